"""`vpbench score`: re-parse and re-score a run's records (no model, no videos)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import command

ORDER = 20


def _score(ns: argparse.Namespace) -> int:
    from vpbench.api import rescore

    rescore(Path(ns.run_dir), parser=ns.parser)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "score", _score, help="re-parse and re-score a run's records (no model)")
    s.add_argument("run_dir")
    s.add_argument("--parser", help="parser name (default: the one the run used)")
