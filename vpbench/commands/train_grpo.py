"""``vpbench train grpo``: stage 2 (Comparative GRPO), run like ``vpbench train sft``."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def register(train_subparsers: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Add ``grpo`` under ``vpbench train``; ``handler`` runs ``recipes/<ns.recipe>.py`` (cli._cmd_train)."""
    g = train_subparsers.add_parser("grpo", help="stage 2: Comparative GRPO (quality comparator + refeed)")
    g.add_argument("--config", required=True, help="recipes/configs/grpo_comparative/*.yaml")
    g.add_argument("--nproc", type=int, default=1, help="processes (torchrun) for multi-GPU DDP")
    g.add_argument("--prepare-tiny", action="store_true",
                   help="build the stage-1 tiny export, the crafted RL manifest and the tiny NLI model if absent")
    g.add_argument("overrides", nargs="*", help="section.key=value, e.g. grpo.lambda_c=0 grpo.refeed=false")
    g.set_defaults(fn=handler, recipe="grpo_comparative")
