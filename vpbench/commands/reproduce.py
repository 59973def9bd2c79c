"""`vpbench reproduce`: the paper's tables from vpbench runs (plan, run what is missing, render)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import command, positive_int

ORDER = 60


def _reproduce(ns: argparse.Namespace) -> int:
    from vpbench.reports.reproduce import ReproduceOptions, reproduce

    return reproduce(ReproduceOptions(
        table=ns.table, scale=ns.scale, config=Path(ns.config) if ns.config else None,
        runs=Path(ns.runs) if ns.runs else None, seeds=ns.seeds, plan_only=ns.plan, n_boot=ns.n_boot))


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "reproduce", _reproduce, help="rebuild a paper table (table1..table6) from vpbench runs",
                description="Plan, run what is missing (evaluations; for table5/6 the ablation trainings), "
                            "and render the table beside the paper's numbers (CSV, Markdown, LaTeX, PNG).")
    p.add_argument("table", help="table1 .. table6")
    p.add_argument("--plan", action="store_true", help="list existing and missing runs with their commands; run nothing")
    p.add_argument("--scale", choices=["tiny", "paper"],
                   help="default config: reports/configs/models_<scale>.yaml or reports/grids/<table>_<scale>.yaml "
                        "(tiny when no --config); paper scale prints its multi-GPU commands without GPUs")
    p.add_argument("--config", help="models config (tables 1-4) or ablation grid (tables 5-6) YAML")
    p.add_argument("--runs", help="runs root (default runs/reproduce/<scale>)")
    p.add_argument("--seeds", type=positive_int, help="train each variant N times; report mean ± spread")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the paired Δ CIs")
