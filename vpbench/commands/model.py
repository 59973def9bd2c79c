"""`vpbench model tiny`: a tiny random Qwen2.5-VL checkpoint for tests and demos."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import command, group

ORDER = 70


def _tiny(ns: argparse.Namespace) -> int:
    from vpbench.models.tiny_qwen import build_tiny_qwen

    path = build_tiny_qwen(Path(ns.output), seed=ns.seed, preset=ns.variant)
    print(f"tiny Qwen2.5-VL checkpoint ({ns.variant}) written to {Path(path).resolve()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    m = group(sub, "model", help="model utilities")
    mt = command(m, "tiny", _tiny, help="build a tiny random Qwen2.5-VL checkpoint (tests, demos)")
    mt.add_argument("--output", required=True)
    mt.add_argument("--seed", type=int, default=0, help="weights seed")
    mt.add_argument("--variant", choices=["micro", "small"], default="micro",
                    help="micro: unit-test size; small: the size the tiny stage-1 config trains (tiny_learn.yaml)")
