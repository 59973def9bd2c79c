"""`vpbench export`: a benchmark's official submission file from a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import command

ORDER = 30


def _export(ns: argparse.Namespace) -> int:
    import json

    from vpbench.engine.records import RecordStore
    from vpbench.errors import ConfigError
    from vpbench.registry import get_task

    task = get_task(ns.task)
    if task.export is None:
        raise ConfigError(f"task '{task.name}' has no official submission format to export")
    path = Path(ns.run_dir) / task.name / "records.jsonl"
    if not path.exists():
        raise ConfigError(f"{path} not found: run {task.name} into {ns.run_dir} first")
    records = list(RecordStore(path).load().values())
    Path(ns.output).write_text(json.dumps(task.export(records), indent=1, ensure_ascii=False) + "\n")
    print(f"{task.name}: wrote {len(records)} answers to {ns.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    e = command(sub, "export", _export, help="write a benchmark's official submission file from a run")
    e.add_argument("run_dir")
    e.add_argument("--task", required=True)
    e.add_argument("--output", required=True)
