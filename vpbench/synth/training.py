"""Generated TRAINING splits: the MotionBench scene families, disjoint seeds, recipe manifests.

``synth_training_split(out_dir, seed, n_videos)`` draws ``n_videos`` clips from the same question
builders as the evaluation generator (``vpbench.synth.motionbench.BUILDERS``: video ``i`` gets
category ``i % 6``) but from its own seed stream, ``SeedSequence([seed, TRAIN_STREAM])`` (the
evaluation split uses ``[seed, 1]``): no clip, and so no QA, is shared with an evaluation split
whatever the seeds (tests/test_synth_training.py checks raw-frame hashes). It writes, under
``out_dir``::

    clips/<i>_<category>.mp4   the clips (same canvas and codec as the evaluation split)
    sft.jsonl                  the SFT manifest (vpbench/train/manifest.py schema, as `vpbench data craft`)
    sft_qa.jsonl               its question records, no captions (what the tiny stage-1 config trains on)
    rl.jsonl                   the RL manifest (RECIPE §3 schema, as `vpbench data craft`)
    split.json                 what was generated: seed, stream, counts, sampling protocol, frame hashes

Per clip: every QA of the builder as a multiple-choice record whose ``prompt`` is the exact user
text `vpbench run` shows for MotionBench (stem, inline "A. ..." options, the official post-prompt)
and whose ``answer`` is, by ``mc_answer`` (``MC_ANSWER_STYLES``), the option letter (``"letter"``) or
the true option's text followed by its letter in parentheses (``"text_letter"``: "It grows (B)", which
MotionBench's official ``polish_answer`` and lmms-eval's extractor both read as "B"; the RL manifest
keeps the letter); (``open_form=True``) the same question without options,
answered with the true option's text (an auxiliary that names what the pixels show); and
(``captions=True``) one caption record ("Describe ...") whose answer is the scene's ground-truth
sentence. ``keywords`` come from the offline
rule-based extractor (on "question + true option", or the caption), as in the craft pipeline.
``key_frames`` / ``n_frames`` index the frames the recipe samples under ``protocol`` (default
``TINY_PROTOCOL``): the ground-truth event frames of the question (each mapped to its nearest
sampled frame). Repetition Count clips (1-2 frame flashes) are the transient-event clips
(``meta.transient``). Same seed → identical manifests and clips (libx264, mbtree off).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vpbench.errors import ConfigError
from vpbench.protocol import Protocol
from vpbench.synth.motionbench import BUILDERS, CATEGORIES, LETTERS, QASpec, format_question, mcq
from vpbench.synth.render import write_mp4
from vpbench.synth.scenes import Canvas, Scene

TRAIN_STREAM = 2  # evaluation split: SeedSequence([seed, 1]); training split: [seed, TRAIN_STREAM]
CAPTION_PROMPT = "Describe the motion and events in the video in temporal order."  # craft's default
TRANSIENT_CATEGORIES = ("Repetition Count",)
# How a multiple-choice SFT record answers (module docstring). "text_letter" names what the pixels show before
# the letter: a randomly initialised tiny model binds a perceived answer to its option letter only through it
# (recipes/configs/sft_contrastive/tiny_learn.yaml has the measurements).
MC_ANSWER_STYLES = ("letter", "text_letter")
# The frames the tiny stage-1 config samples (recipes/configs/sft_contrastive/tiny*.yaml `data`):
# clips written at TINY_CLIP_FPS (the 30 rendered frames as a 7.5 s clip), sampled at 2 fps: 14 frames
# (smart_nframes rounds 15 to a multiple of 2), resized from 128x96 to 56x56 (4 visual tokens per temporal
# patch of 2 frames: 28 per clip). Why 4 -> 2 fps and not 10 -> 5 fps (the same 14 frames): a temporal patch
# then spans 1.07 s, and transformers 4.5x truncates Qwen2.5-VL's seconds-per-temporal-patch to an integer
# inside get_rope_index, so under 1 s every video token would get temporal position 0 (the model could not
# tell the first frames from the last); at 1.07 s the truncated and the exact positions agree (0, 2, .., 12).
TINY_CLIP_FPS = 4.0
TINY_PROTOCOL = Protocol(fps=2.0, min_frames=4, max_frames=64, min_pixels=3136, max_pixels=4704)


def motionbench_prompt(stem: str, options: list[str]) -> str:
    """The user text `vpbench run` builds for a MotionBench question (tasks/motionbench/task.py)."""
    from vpbench.registry import get_task

    return get_task("motionbench").protocol.prompt_template.format(stem=stem, options="\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options)),
                         question=format_question(stem, options)).strip()


def frames_sha256(frames: np.ndarray) -> str:
    """Content hash of a clip's raw rendered frames (shape included)."""
    h = hashlib.sha256(repr(tuple(frames.shape)).encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


def sampled_key_frames(event_frames: list[int], scene: Scene, protocol: Protocol) -> tuple[list[int], int]:
    """(key frame indices into the frames ``protocol`` samples from ``scene``, number sampled)."""
    from vpbench.video.sampler import plan_sampling

    plan = plan_sampling(protocol, scene.n_frames, scene.fps, scene.frames.shape[1], scene.frames.shape[2])
    idx = np.asarray(plan.indices)
    keys = sorted({int(np.argmin(np.abs(idx - e))) for e in event_frames})
    return [k for k in keys if k > 0], plan.n


def mc_target(truth: str, letter: str, style: str) -> str:
    """The SFT answer of a multiple-choice record in ``style`` (one of ``MC_ANSWER_STYLES``)."""
    if style == "letter":
        return letter
    if style == "text_letter":
        return f"{truth} ({letter})"
    raise ConfigError(f"multiple-choice answer style {style!r} is not one of {list(MC_ANSWER_STYLES)}")


def _qa_records(i: int, category: str, scene: Scene, specs: list[QASpec], rng: np.random.Generator,
                keywords: Any, open_form: bool, mc_answer: str = "letter") -> list[dict[str, Any]]:
    out = []
    for j, spec in enumerate(specs):
        pos = int(rng.integers(len(spec.distractors) + 1))
        distractors = [spec.distractors[int(k)] for k in rng.permutation(len(spec.distractors))]
        options = mcq(spec.truth, distractors, pos)
        groups = spec.groups or tuple(scene.event_groups)
        events = sorted({t for g in groups for t in scene.event_groups[g]})
        out.append({"uid": f"train_{i:05d}_q{j}", "kind": "qa", "answer_type": "choice",
                    "prompt": motionbench_prompt(spec.stem, options), "letter": LETTERS[pos],
                    "answer": mc_target(spec.truth, LETTERS[pos], mc_answer),
                    "keywords": keywords.extract(f"{spec.stem} {spec.truth}") or [spec.truth.lower()],
                    "events": events, "meta": {"category": category, "answer_text": spec.truth}})
        if open_form:  # the same question without options: the answer is the true option's text
            out.append({**out[-1], "uid": f"train_{i:05d}_q{j}_open", "kind": "qa_open", "answer_type": "open",
                        "prompt": spec.stem, "answer": spec.truth, "letter": None})
    return out


def _caption_record(i: int, category: str, scene: Scene, keywords: Any) -> dict[str, Any]:
    caption = str(scene.facts["caption"])
    return {"uid": f"train_{i:05d}_caption", "kind": "caption", "answer_type": "open", "prompt": CAPTION_PROMPT,
            "answer": caption, "keywords": keywords.extract(caption) or [scene.kind.replace("_", " ")],
            "events": list(scene.event_frames), "meta": {"category": category}}


@dataclass(frozen=True)
class _Job:
    out_dir: str
    seed: int
    n_videos: int
    index: int
    canvas: Canvas
    protocol: Protocol
    captions: bool
    open_form: bool
    mc_answer: str = "letter"


def clip_seed(seed: int, index: int) -> np.random.SeedSequence:
    """Clip ``index``'s seed: ``SeedSequence([seed, TRAIN_STREAM]).spawn(n)[index]`` for any n > index (same
    entropy, spawn key ``(index,)``), made directly: spawning n children per clip cost 16 ms a clip at n = 1,800."""
    return np.random.SeedSequence([seed, TRAIN_STREAM], spawn_key=(index,))


def _make_clip(job: _Job) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """One clip → (SFT records, RL records, clip info). Depends only on (seed, index)."""
    from vpbench.keyframes.keywords import get_keyword_extractor

    rng = np.random.default_rng(clip_seed(job.seed, job.index))
    category = CATEGORIES[job.index % len(CATEGORIES)]
    scene, specs = BUILDERS[category](rng, job.canvas)
    kw = get_keyword_extractor("rules")
    units = _qa_records(job.index, category, scene, specs, rng, kw, job.open_form, job.mc_answer)
    if job.captions:
        units.append(_caption_record(job.index, category, scene, kw))
    rel = f"clips/{job.index:05d}_{category.split()[0].lower()}.mp4"
    write_mp4(Path(job.out_dir) / rel, scene.frames, scene.fps)
    transient = category in TRANSIENT_CATEGORIES
    sft, rl = [], []
    for u in units:
        keys, n = sampled_key_frames(u["events"], scene, job.protocol)
        base = {"id": u["uid"], "video": rel, "start": None, "end": None, "prompt": u["prompt"], "answer": u["answer"]}
        key_fields = {"key_frames": keys, "n_frames": n} if keys else {}
        sft.append({**base, "keywords": u["keywords"], **key_fields,
                    "meta": {"item": rel, "kind": u["kind"], "answer_type": u["answer_type"], "scene": scene.kind,
                             "transient": transient, **u["meta"]}})
        rl.append({**base, "answer": u.get("letter") or u["answer"],  # RL rewards read the bare letter
                   "answer_type": u["answer_type"], "keywords": u["keywords"], "key_frames": keys})
    info = {"video": rel, "category": category, "scene": scene.kind, "frames_sha256": frames_sha256(scene.frames),
            "facts": dict(scene.facts)}
    return sft, rl, info


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def synth_training_split(out_dir: str | Path, seed: int = 0, n_videos: int = 600, *, canvas: Canvas | None = None,
                         protocol: Protocol = TINY_PROTOCOL, captions: bool = True, open_form: bool = True,
                         workers: int = 1, mc_answer: str = "letter") -> Path:
    """Write a training split (module docstring) under ``out_dir``; returns the SFT manifest path.

    ``workers`` > 1 renders and encodes clips in that many processes (same bytes as 1 worker).
    A finished split with the same arguments is reused (``split.json`` is written last)."""
    if n_videos < 1:
        raise ConfigError(f"synth_training_split: n_videos must be >= 1, got {n_videos}")
    if workers < 1:
        raise ConfigError(f"synth_training_split: workers must be >= 1, got {workers}")
    mc_target("", "A", mc_answer)  # an unknown style fails here, before any clip is written
    out = Path(out_dir)
    canvas = canvas or Canvas()
    params = {"seed": seed, "stream": TRAIN_STREAM, "n_videos": n_videos, "captions": captions, "open_form": open_form,
              "mc_answer": mc_answer,
              "canvas": [canvas.width, canvas.height, canvas.fps, canvas.n_frames],
              "protocol": {k: getattr(protocol, k) for k in ("fps", "nframes", "min_frames", "max_frames",
                                                              "min_pixels", "max_pixels", "total_pixels")}}
    done = out / "split.json"
    if done.is_file() and (out / "sft.jsonl").is_file():
        if json.loads(done.read_text(encoding="utf-8")).get("params") == params:
            return out / "sft.jsonl"
    (out / "clips").mkdir(parents=True, exist_ok=True)
    jobs = [_Job(str(out), seed, n_videos, i, canvas, protocol, captions, open_form, mc_answer) for i in range(n_videos)]
    if workers == 1:
        results = [_make_clip(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_make_clip, jobs, chunksize=8))
    sft = [r for res in results for r in res[0]]
    rl = [r for res in results for r in res[1]]
    _write_jsonl(out / "sft.jsonl", sft)
    _write_jsonl(out / "sft_qa.jsonl", [r for r in sft if r["meta"]["kind"] != "caption"])
    _write_jsonl(out / "rl.jsonl", rl)
    summary = {"params": params, "n_videos": n_videos, "n_sft": len(sft), "n_rl": len(rl),
               "n_qa": sum(r["meta"]["kind"] == "qa" for r in sft),
               "n_qa_open": sum(r["meta"]["kind"] == "qa_open" for r in sft),
               "clips": [res[2] for res in results]}
    done.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out / "sft.jsonl"
