"""Resumable training checkpoints and the plain Qwen2.5-VL export.

Checkpoint dir ``<output_dir>/checkpoints/step_<n>/`` = ``accelerator.save_state`` (model incl.
heads, optimizer, registered objects such as the LR scheduler, and every process's Python /
NumPy / torch / CUDA RNG states; sharded under DeepSpeed / FSDP) + ``trainer_state.json`` (step,
resolved config, manifest hash, provenance). ``<output_dir>/checkpoints/latest`` names the newest.

Export dir: a standard ``Qwen2_5_VLForConditionalGeneration`` checkpoint (config.json,
safetensors, generation config), the tokenizer / processor files copied from the source dir, and
``vpbench_train.json`` beside them (resolved config, step, manifest hash, provenance). The
contrastive heads are dropped, so the dir loads with ``from_pretrained`` like any release.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vpbench.errors import ConfigError

STATE_FILE = "trainer_state.json"
EXPORT_META = "vpbench_train.json"
# files a Qwen2.5-VL dir carries besides weights/config
AUX_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
             "added_tokens.json", "chat_template.json", "chat_template.jinja", "preprocessor_config.json",
             "video_preprocessor_config.json")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def save_checkpoint(accelerator: Any, output_dir: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Save everything needed to resume at ``step``; returns the checkpoint dir (all processes call)."""
    ckpt = Path(output_dir) / "checkpoints" / f"step_{step}"
    accelerator.save_state(str(ckpt))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json(ckpt / STATE_FILE, {**state, "step": step})
        (ckpt.parent / "latest").write_text(ckpt.name + "\n", encoding="utf-8")
    accelerator.wait_for_everyone()
    return ckpt


def resolve_resume(output_dir: str | Path, resume_from: str | None) -> Path | None:
    """``None`` → None; ``"latest"`` → the newest checkpoint of ``output_dir`` (None when there is
    none yet); else the given dir, which must hold ``trainer_state.json``."""
    if not resume_from:
        return None
    if resume_from == "latest":
        pointer = Path(output_dir) / "checkpoints" / "latest"
        if not pointer.is_file():
            return None
        path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    else:
        path = Path(resume_from)
    if not (path / STATE_FILE).is_file():
        raise ConfigError(f"train.resume_from={resume_from!r}: {path} is not a checkpoint dir (no {STATE_FILE}); "
                          "pass a <output_dir>/checkpoints/step_<n> dir or 'latest'")
    return path


def load_checkpoint(accelerator: Any, ckpt: Path) -> dict[str, Any]:
    """Restore model / optimizer / registered objects / RNG states; return the trainer state."""
    accelerator.load_state(str(ckpt))
    return json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))


def export_pretrained(accelerator: Any, wrapped: Any, source_dir: str | Path, out_dir: str | Path,
                      meta: dict[str, Any]) -> Path:
    """Write a plain Qwen2.5-VL dir (heads dropped) + ``vpbench_train.json``; all processes call
    (the full state dict is gathered under ZeRO-3 / FSDP), the main process writes."""
    out = Path(out_dir)
    full = accelerator.get_state_dict(wrapped)
    if accelerator.is_main_process:
        inner = accelerator.unwrap_model(wrapped).model
        state = {k[len("model."):]: v for k, v in full.items() if k.startswith("model.")}
        out.mkdir(parents=True, exist_ok=True)
        inner.save_pretrained(str(out), state_dict=state, safe_serialization=True)
        src = Path(source_dir)
        for name in AUX_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, out / name)
        _write_json(out / EXPORT_META, {**meta, "heads_dropped": True, "source_model": str(src)})
    accelerator.wait_for_everyone()
    return out
