"""The tiny-scale setup: generated data, the tiny model, and how runs evaluate it.

Used by scripts/demo.sh (README command 1), benchmarks/tiny_learning.py and the tests:

- ``eval_sets(data_cfg)``: the ``vpbench run --set`` overrides that make MotionBench evaluation
  sample frames exactly as the tiny stage-1 config trains (``data`` section: fps, frame and pixel
  limits), so a tiny checkpoint is evaluated on what it was trained to see.
- ``export_checkpoint(ckpt, base_model, out)``: a plain Qwen2.5-VL dir from a stage-1 recipe
  checkpoint (``<output_dir>/checkpoints/step_<n>``), for learning curves.
- ``shuffle_frames_across_videos(split, out, seed)``: the pixel control. A copy of a training split
  whose clip ``i`` shows, at every frame ``t``, frame ``t`` of clip ``perm_t(i)`` (``perm_t`` a
  random permutation of the clips per ``t``): manifests and labels unchanged, the same pixels
  overall, but no clip's frames belong to its questions any more.
- ``chance_accuracy(data_root)``: expected accuracy of a uniform guess over each dev question's options.
- ``option_text_accuracy(run_dir)``: share of dev questions whose response names the true option's text
  before its letter ("It grows (B)", the training split's ``text_letter`` answers): seeing the answer,
  apart from binding it to its letter (the official parser, hence Dev-AVG, reads the letter only).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from vpbench.errors import ConfigError, DataError

EVAL_PROTOCOL_KEYS = ("fps", "nframes", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels")


def eval_sets(data_cfg: Any, task: str = "motionbench") -> list[str]:
    """``KEY=VALUE`` overrides for ``vpbench run --set`` (``task.protocol.*``) from a recipe ``data`` config."""
    out = []
    for key in EVAL_PROTOCOL_KEYS:
        value = getattr(data_cfg, key)
        out.append(f"{task}.protocol.{key}={'null' if value is None else value}")
    return out


def export_checkpoint(ckpt: str | Path, base_model: str | Path, out_dir: str | Path) -> Path:
    """Plain Qwen2.5-VL dir from a recipe checkpoint's ``model.safetensors`` (heads dropped)."""
    import torch
    from safetensors.torch import load_file
    from transformers import Qwen2_5_VLForConditionalGeneration

    from vpbench.train.checkpoint import AUX_FILES

    ckpt, base, out = Path(ckpt), Path(base_model), Path(out_dir)
    weights = ckpt / "model.safetensors"
    if not weights.is_file():
        raise DataError(f"{ckpt} holds no model.safetensors; pass a <output_dir>/checkpoints/step_<n> dir")
    state = {k[len("model."):]: v for k, v in load_file(str(weights)).items() if k.startswith("model.")}
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(base), dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if model.config.get_text_config().tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise DataError(f"{weights} does not fit {base}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    for name in (*AUX_FILES, "vpbench_tiny.json"):
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    (out / "vpbench_train.json").write_text(json.dumps({"checkpoint": str(ckpt), "source_model": str(base)}) + "\n")
    return out


def shuffle_frames_across_videos(split_dir: str | Path, out_dir: str | Path, seed: int = 0) -> Path:
    """Write the shuffled-frames copy of a training split (module docstring); returns its SFT manifest."""
    from vpbench.synth.render import read_mp4, write_mp4

    src, out = Path(split_dir), Path(out_dir)
    info = json.loads((src / "split.json").read_text(encoding="utf-8"))
    names = [c["video"] for c in info["clips"]]
    if len(names) < 2:
        raise ConfigError(f"{src}: shuffling frames across videos needs >= 2 clips, got {len(names)}")
    clips = [read_mp4(src / n) for n in names]
    shapes = {c[0].shape for c in clips}
    if len(shapes) != 1:
        raise DataError(f"{src}: clips differ in shape {sorted(shapes)}; frames cannot be exchanged")
    frames = np.stack([c[0] for c in clips])  # [N, T, H, W, 3]
    rng = np.random.default_rng([seed, 7])
    mixed = np.empty_like(frames)
    for t in range(frames.shape[1]):
        mixed[:, t] = frames[rng.permutation(len(names)), t]
    for name, clip, (_, fps) in zip(names, mixed, clips):
        write_mp4(out / name, clip, fps)
    for name in ("sft.jsonl", "sft_qa.jsonl", "rl.jsonl"):
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    (out / "split.json").write_text(json.dumps({**info, "shuffled_frames": {"from": str(src), "seed": seed}},
                                               indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out / "sft_qa.jsonl"


def chance_accuracy(data_root: str | Path) -> tuple[float, int]:
    """(mean over dev questions of 1 / number of options, number of dev questions) of a MotionBench dir."""
    from vpbench.registry import get_task

    dev = [s for s in get_task("motionbench").load_samples(Path(data_root)) if s.answer is not None]
    if not dev:
        raise DataError(f"{data_root}: no dev questions (answer letters) to compute chance on")
    return float(np.mean([1.0 / len(s.options) for s in dev])), len(dev)


def option_text_accuracy(run_dir: str | Path, task: str = "motionbench") -> tuple[float, int]:
    """(share of dev records whose response, up to a trailing " (<letter>)", is the true option's text,
    number of dev records) of a `vpbench run` directory (module docstring)."""
    path = Path(run_dir) / task / "records.jsonl"
    if not path.is_file():
        raise DataError(f"{path} does not exist: pass a `vpbench run` directory that evaluated {task}")
    n = hit = 0
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            r = json.loads(line)
            if r.get("answer") is None:
                continue
            options = dict(o.split(". ", 1) for o in r.get("options") or [] if ". " in o)
            if len(options) != len(r.get("options") or []) or r["answer"] not in options:
                raise DataError(f"{path}:{line_no}: options {r.get('options')!r} are not 'A. text' lines holding "
                                f"the answer {r['answer']!r}; re-run `vpbench run` on a multiple-choice task")
            text = (r.get("response") or "").strip()
            if text.endswith(")") and " (" in text:
                text = text.rsplit(" (", 1)[0].strip()
            n += 1
            hit += text == options[r["answer"]]
    if not n:
        raise DataError(f"{path}: no dev records (answers) to score; the run holds test-split samples only")
    return hit / n, n
