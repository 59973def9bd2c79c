"""`vpbench train grpo`: stage 2 (Comparative GRPO), run like `vpbench train sft` (recipes/grpo_comparative.py)."""

from __future__ import annotations

import argparse

from vpbench.commands._base import add_set_option, command, group, positive_int

ORDER = 81


def _train(ns: argparse.Namespace) -> int:
    from vpbench.commands.train import _train as run_recipe

    return run_recipe(ns)


def register(sub: argparse._SubParsersAction) -> None:
    tr = group(sub, "train", help="run a training recipe (recipes/<name>.py)")
    g = command(tr, "grpo", _train, help="stage 2: Comparative GRPO (quality comparator + refeed)")
    g.add_argument("--config", required=True,
                   help="recipe YAML, e.g. recipes/configs/grpo_comparative/tiny.yaml (the bundled copy is used "
                        "when the path does not exist here)")
    add_set_option(g, "config override, e.g. --set grpo.lambda_c=0 --set grpo.refeed=false")
    g.add_argument("--nproc", type=positive_int, default=1, help="processes (torchrun) for multi-GPU DDP")
    g.add_argument("--prepare-tiny", action="store_true",
                   help="build the stage-1 tiny export, the crafted RL manifest and the tiny NLI model if absent")
    g.add_argument("legacy", nargs="*", metavar="KEY=VALUE", help="deprecated: use --set KEY=VALUE")
    g.set_defaults(recipe="grpo_comparative")
