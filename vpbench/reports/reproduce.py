"""``vpbench reproduce tableN``: plan → run what is missing → render (Python API of the command)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from vpbench.errors import ConfigError
from vpbench.reports.cells import build_cells, paired_deltas
from vpbench.reports.export import merge_paired, to_markdown, display_frame, write_report
from vpbench.reports.grid import default_config, load_grid, load_models_config
from vpbench.reports.plan import Plan, grid_plan, models_plan
from vpbench.reports.runner import describe, execute, rows_with_reasons
from vpbench.reports.spec import RowSpec, TableSpec, get_spec, load_paper, reports_dir
from vpbench.reports.tidy import load_metrics, load_scores


@dataclass(frozen=True)
class ReproduceOptions:
    table: str
    scale: str | None = None          # None: the config's (default tiny)
    config: Path | None = None
    runs: Path | None = None          # default runs/reproduce/<scale>
    seeds: int | None = None
    plan_only: bool = False
    n_boot: int = 1000


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def make_plan(opts: ReproduceOptions) -> Plan:
    spec = get_spec(opts.table)
    reports = reports_dir()
    path = opts.config or default_config(reports, spec.name, spec.kind, opts.scale or "tiny")
    cfg = load_models_config(path) if spec.kind == "models" else load_grid(path)
    if spec.kind == "ablation" and cfg.table != spec.name:  # type: ignore[union-attr]
        raise ConfigError(f"{path} is a grid for {cfg.table}, not {spec.name}")  # type: ignore[union-attr]
    if opts.scale and cfg.scale != opts.scale:
        raise ConfigError(f"{path} is a {cfg.scale}-scale config but --scale {opts.scale} was given")
    root = (opts.runs or Path("runs") / "reproduce" / cfg.scale).resolve()
    needs_gpu = cfg.scale == "paper" or any(s.needs_gpu for s in getattr(cfg, "stages", ()))
    gpu = _gpu() if needs_gpu else False  # (importing torch only when it matters)
    if spec.kind == "models":
        return models_plan(spec, cfg, root, gpu=gpu)  # type: ignore[arg-type]
    return grid_plan(spec, cfg, root, gpu=gpu, seeds=opts.seeds)  # type: ignore[arg-type]


def render(spec: TableSpec, rows: Sequence[RowSpec], dirs: Sequence[Path], root: Path, out_dir: Path,
           n_boot: int = 1000) -> tuple[pd.DataFrame, list[Path]]:
    """Tidy frames of the finished runs → cells (+ paired Δ for ablation tables) → exports."""
    paper = load_paper(spec)
    tidy = load_metrics(dirs, root=root)
    cells = build_cells(spec, tidy, rows, paper)
    paired = None
    if spec.kind == "ablation" and dirs:
        paired = paired_deltas(spec, load_scores(dirs, spec.tasks, root=root), rows, n_boot=n_boot)
    cells = merge_paired(cells, paired)
    return cells, write_report(spec, cells, paper, out_dir)


def print_plan(plan: Plan, echo: Callable[[str], None]) -> None:
    status = describe(plan)
    counts = {k: sum(1 for _, st in status if st.startswith(k)) for k in ("done", "to run", "cannot run")}
    echo(f"{plan.table} ({plan.scale} scale): {len(status)} steps — {counts['done']} done, {counts['to run']} to run, "
         f"{counts['cannot run']} cannot run here; runs under {plan.root}")
    for step, st in status:
        echo(f"  [{st}] {step.id}\n      {step.command}")
    echo("rows:")
    for row in plan.rows:
        ids = plan.evals.get(row.key, ())
        why = row.reason or next((plan.blocked_by(plan.step(i)) for i in ids if plan.blocked_by(plan.step(i))), "")
        seeds = f" ({len(ids)} seeds)" if len(ids) > 1 else ""
        echo(f"  {row.key}{seeds}: {row.label}" + (f" — {why}" if why else ""))


def reproduce(opts: ReproduceOptions, echo: Callable[[str], None] = print) -> int:
    """Returns the exit code: 0 when every runnable step finished, 1 when one failed."""
    spec = get_spec(opts.table)
    plan = make_plan(opts)
    if opts.plan_only:
        print_plan(plan, echo)
        return 0
    if plan.scale == "paper" and not _gpu():
        echo("vpbench: no GPU here: paper scale is printed, not run. Run these commands on a GPU machine:")
        print_plan(plan, echo)
        return 0
    results = execute(plan, echo)
    rows, dirs = rows_with_reasons(plan, results)
    out_dir = plan.root / "reports"
    cells, paths = render(spec, rows, dirs, plan.root, out_dir, opts.n_boot)
    echo(to_markdown(spec, display_frame(spec, cells, load_paper(spec))))
    ran = sum(r.status == "ran" for r in results.values())
    reused = sum(r.status == "done" for r in results.values())
    failed = [r for r in results.values() if r.status == "failed"]
    echo(f"{spec.name}: {ran} steps run, {reused} reused, {len(failed)} failed; wrote {', '.join(p.name for p in paths)} "
         f"to {out_dir}")
    return 1 if failed else 0
