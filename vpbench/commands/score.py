"""`vpbench score`: re-parse and re-score a run's records (no model, no videos)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import command, print_run_files

ORDER = 20


def _score(ns: argparse.Namespace) -> int:
    from vpbench.api import rescore

    out = Path(ns.output) if ns.output else None
    rescore(Path(ns.run_dir), parser=ns.parser, output=out, argv=ns.argv)
    print_run_files(out or ns.run_dir, title="re-scored run" + (f" (copy of {ns.run_dir})" if out else ""))
    print("  history: manifest.json -> scoring_history")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "score", _score, help="re-parse and re-score a run's records (no model)",
                description="Re-parse and re-score a run's records (no model, no videos). Each scoring is "
                            "appended to manifest.json's scoring_history (parser, stats, what changed).")
    s.add_argument("run_dir")
    s.add_argument("--parser", help="parser name (default: the one the run used)")
    s.add_argument("--output", metavar="DIR", help="re-score into a copy at DIR (default: rewrite RUN_DIR in place)")
