"""`vpbench train sft`: run a training recipe (recipes/<name>.py) in a subprocess."""

from __future__ import annotations

import argparse
import sys

from vpbench.commands._base import add_set_option, command, group, positive_int

ORDER = 80


def legacy_overrides(ns: argparse.Namespace) -> list[str]:
    """``--set`` values plus the deprecated positional ``key=value`` form (with a warning)."""
    if ns.legacy:
        print(f"vpbench: warning: positional overrides are deprecated; use --set KEY=VALUE "
              f"(e.g. --set {ns.legacy[0]})", file=sys.stderr)
    return [*ns.legacy, *ns.set]


def preflight_sft(config, overrides: list[str]) -> None:
    """Checks made before any process starts (the recipe repeats them): a strict config, and an
    output dir that holds no earlier run unless it resumes or overwrites it."""
    from vpbench.config import parse_assignments
    from vpbench.train.checkpoint import check_fresh_start
    from vpbench.train.config import load_config

    cfg = load_config(config, parse_assignments(overrides))
    check_fresh_start(cfg.train.output_dir, cfg.train.resume_from, cfg.train.overwrite)


PREFLIGHT = {"sft_contrastive": preflight_sft}
"""recipe name → in-process checks run before the (torch-importing) recipe process starts."""


def _train(ns: argparse.Namespace) -> int:
    import subprocess

    from vpbench.resources import recipe_script, resolve_recipe_config

    recipe = recipe_script(ns.recipe)
    config = resolve_recipe_config(ns.config)
    overrides = legacy_overrides(ns)
    if ns.recipe in PREFLIGHT:
        PREFLIGHT[ns.recipe](config, overrides)
    if ns.nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ns.nproc}", str(recipe)]
    else:
        cmd = [sys.executable, str(recipe)]
    cmd += ["--config", str(config), *(["--prepare-tiny"] if ns.prepare_tiny else []), *overrides]
    print("vpbench: " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode


def register(sub: argparse._SubParsersAction) -> None:
    tr = group(sub, "train", help="run a training recipe (recipes/<name>.py)")
    ts = command(tr, "sft", _train, help="stage 1: SFT with intermediate-layer contrastive learning")
    ts.add_argument("--config", required=True,
                    help="recipe YAML, e.g. recipes/configs/sft_contrastive/tiny.yaml (the bundled copy "
                         "is used when the path does not exist here)")
    add_set_option(ts, "config override, e.g. --set contrastive.weight=0 --set train.max_steps=100")
    ts.add_argument("--nproc", type=positive_int, default=1, help="processes (torchrun) for multi-GPU DDP")
    ts.add_argument("--prepare-tiny", action="store_true", help="build the tiny model + synthetic data if absent")
    ts.add_argument("legacy", nargs="*", metavar="KEY=VALUE", help="deprecated: use --set KEY=VALUE")
    ts.set_defaults(recipe="sft_contrastive")
