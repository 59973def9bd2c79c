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
import os
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


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + ``os.replace`` (a crash leaves the old or the new file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(accelerator: Any, output_dir: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Save everything needed to resume at ``step``; returns the checkpoint dir (all processes call)."""
    ckpt = Path(output_dir) / "checkpoints" / f"step_{step}"
    accelerator.save_state(str(ckpt))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json(ckpt / STATE_FILE, {**state, "step": step})
        write_text_atomic(ckpt.parent / "latest", ckpt.name + "\n")
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


def check_fresh_start(output_dir: str | Path, resume_from: str | None, overwrite: bool) -> bool:
    """A run that does not resume must not silently retrain over an earlier run's checkpoints and
    export. Returns True when ``output_dir`` holds a run to delete (``train.overwrite=true``);
    raises ConfigError naming the fixes when it holds one and neither resume nor overwrite is set."""
    pointer = Path(output_dir) / "checkpoints" / "latest"
    if resume_from or not pointer.is_file():
        return False
    if overwrite:
        return True
    latest = pointer.read_text(encoding="utf-8").strip()
    raise ConfigError(
        f"{output_dir} already holds a training run (latest checkpoint {latest}): pass "
        f"--set train.resume_from=latest to continue it, --set train.overwrite=true to delete it and start "
        f"again, or --set train.output_dir=NEW_DIR")


# config sections whose change makes a resumed run a different run (train.* may change: steps, output, ...)
RESUME_SECTIONS = ("model", "data", "contrastive", "optim")
RESUME_IGNORED = frozenset({"data.num_workers"})  # no effect on what is trained


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint dir (step, config, manifest_sha256, provenance)."""
    return json.loads((Path(ckpt) / STATE_FILE).read_text(encoding="utf-8"))


def _flat(x: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(x, dict):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: list(x) if isinstance(x, tuple) else x}


def config_differences(saved: dict[str, Any], current: dict[str, Any],
                       sections: tuple[str, ...] = RESUME_SECTIONS) -> list[str]:
    """Dotted keys of ``sections`` whose values differ between two ``SFTConfig.to_dict()``."""
    a = {k: v for s in sections for k, v in _flat(saved.get(s, {}), f"{s}.").items()}
    b = {k: v for s in sections for k, v in _flat(current.get(s, {}), f"{s}.").items()}
    return sorted(k for k in set(a) | set(b) if k not in RESUME_IGNORED and a.get(k, "<unset>") != b.get(k, "<unset>"))


def check_resumable(saved_state: dict[str, Any], current_cfg: dict[str, Any], manifest_hash: str, ckpt: Path,
                    sections: tuple[str, ...] = RESUME_SECTIONS) -> None:
    """ConfigError when the checkpoint was trained on another manifest or with other model / data /
    contrastive / optim settings than the current config (a silent continuation would mix two runs)."""
    problems = []
    saved_hash = saved_state.get("manifest_sha256")
    if saved_hash != manifest_hash:
        problems.append(f"manifest_sha256 ({str(saved_hash)[:12]}... saved, {manifest_hash[:12]}... now: the "
                        "manifest file changed)")
    saved_cfg = saved_state.get("config")
    if not isinstance(saved_cfg, dict):
        problems.append("config (the checkpoint records none)")
    else:
        diff = config_differences(saved_cfg, current_cfg, sections)
        problems += [f"{k} ({_flat(saved_cfg).get(k, '<unset>')!r} saved, {_flat(current_cfg).get(k, '<unset>')!r} "
                     "now)" for k in diff]
    if problems:
        raise ConfigError(f"cannot resume from {ckpt}: the checkpoint differs from the current run in "
                          f"{'; '.join(problems)}. Restore the checkpoint's settings/manifest, or start a new run "
                          "(another train.output_dir, or train.resume_from=null)")


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
