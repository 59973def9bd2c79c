"""Provenance for every artifact: versions, git state, host, time."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import vpbench

PACKAGES = ("torch", "transformers", "numpy", "av", "accelerate", "pandas", "rouge-score", "nltk",
            "pycocoevalcap", "unbabel-comet", "vllm", "deepspeed")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def git_state(root: Path | None = None) -> dict[str, Any]:
    """sha, dirty flag and a hash of the diff of the vpbench checkout (None outside git)."""
    root = root or Path(vpbench.__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None

    sha = git("rev-parse", "HEAD")
    if sha is None:
        return {"sha": None, "dirty": None, "diff_sha256": None}
    diff = git("diff", "HEAD") or ""
    status = git("status", "--porcelain", "--untracked-files=no") or ""
    return {"sha": sha.strip(), "dirty": bool(status.strip()),
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None}


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "vpbench": vpbench.__version__,
        "packages": package_versions(),
        "git": git_state(),
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    torch = sys.modules.get("torch")  # only a run that loaded a model has imported torch: replay, dummy
    if torch is None:                   # and rescoring runs never pay its ~3 s import for this
        info["cuda"], info["gpus"] = None, None
        return info
    info["cuda"] = torch.version.cuda
    info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
