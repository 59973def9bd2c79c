"""`vpbench train sft`: run a training recipe (recipes/<name>.py) in a subprocess."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpbench.commands._base import command, group

ORDER = 80


def _train(ns: argparse.Namespace) -> int:
    import subprocess

    from vpbench.errors import ConfigError

    recipe = Path(__file__).resolve().parent.parent.parent / "recipes" / f"{ns.recipe}.py"
    if not recipe.is_file():
        raise ConfigError(f"recipe not found: {recipe} (run from a vpbench checkout)")
    if ns.nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ns.nproc}", str(recipe)]
    else:
        cmd = [sys.executable, str(recipe)]
    cmd += ["--config", ns.config, *(["--prepare-tiny"] if ns.prepare_tiny else []), *ns.overrides]
    print("vpbench: " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode


def register(sub: argparse._SubParsersAction) -> None:
    tr = group(sub, "train", help="run a training recipe (recipes/<name>.py)")
    ts = command(tr, "sft", _train, help="stage 1: SFT with intermediate-layer contrastive learning")
    ts.add_argument("--config", required=True, help="recipes/configs/sft_contrastive/*.yaml")
    ts.add_argument("--nproc", type=int, default=1, help="processes (torchrun) for multi-GPU DDP")
    ts.add_argument("--prepare-tiny", action="store_true", help="build the tiny model + synthetic data if absent")
    ts.add_argument("overrides", nargs="*", help="section.key=value, e.g. contrastive.weight=0")
    ts.set_defaults(recipe="sft_contrastive")
