"""`vpbench export`: a benchmark's official submission file from a run.

A partial run (``--limit``, excluded videos, an interrupted run) would submit a file that misses
answers: it is refused unless ``--allow-partial`` says so, and the message names what is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpbench.commands._base import command

ORDER = 30


def _missing(run_dir: Path, task: str, n_records: int) -> str | None:
    """Why the run's answers for ``task`` are incomplete, or None when they are complete."""
    from vpbench.errors import ConfigError
    from vpbench.results import read_json

    info = read_json(run_dir / "manifest.json").get("tasks", {}).get(task)
    if info is None:
        raise ConfigError(f"{run_dir}/manifest.json has no task '{task}': run it into {run_dir} first")
    n_total = int(info.get("n_total", n_records))
    reasons = []
    if n_records < n_total:
        reasons.append(f"{n_total - n_records} of {n_total} samples have no answer")
    if info.get("n_excluded"):
        reasons.append(f"{info['n_excluded']} excluded (missing/broken videos)")
    if info.get("partial") and not reasons:
        reasons.append("the run is marked partial")
    return "; ".join(reasons) or None


def _export(ns: argparse.Namespace) -> int:
    from vpbench.engine.records import RecordStore
    from vpbench.errors import ConfigError
    from vpbench.hashing import safe_dumps
    from vpbench.registry import get_task

    task = get_task(ns.task)
    if task.export is None:
        raise ConfigError(f"task '{task.name}' has no official submission format to export")
    run_dir = Path(ns.run_dir)
    path = run_dir / task.name / "records.jsonl"
    if not path.exists():
        raise ConfigError(f"{path} not found: run {task.name} into {ns.run_dir} first")
    records = list(RecordStore(path).load().values())
    missing = _missing(run_dir, task.name, len(records))
    if missing and not ns.allow_partial:
        raise ConfigError(
            f"{run_dir} is a partial run of {task.name}: {missing}. Complete it by re-running the same "
            f"`vpbench run` without --limit into {run_dir} (finished samples are not generated again), "
            f"or pass --allow-partial to export the {len(records)} answers it has")
    if missing:
        print(f"vpbench: warning: exporting a partial run: {missing}", file=sys.stderr)
    out = Path(ns.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(safe_dumps(task.export(records), indent=1) + "\n", encoding="utf-8")
    print(f"{task.name}: wrote {len(records)} answers to {out.resolve()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    e = command(sub, "export", _export, help="write a benchmark's official submission file from a run")
    e.add_argument("run_dir")
    e.add_argument("--task", required=True)
    e.add_argument("--output", required=True, help="submission file to write")
    e.add_argument("--allow-partial", action="store_true",
                   help="export even when the run lacks answers (--limit, excluded videos, interrupted)")
