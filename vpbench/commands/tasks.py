"""`vpbench tasks`: the registered tasks and, with a data dir, their data status."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vpbench.commands._base import command

ORDER = 40


def _tasks(ns: argparse.Namespace) -> int:
    from vpbench.registry import get_task, task_names

    data = Path(ns.data_dir) if ns.data_dir else (Path(os.environ["VPBENCH_DATA_DIR"])
                                                  if os.environ.get("VPBENCH_DATA_DIR") else None)
    names = task_names()
    width = max(map(len, names)) + 2  # columns line up whatever the longest name
    for name in names:
        try:
            task = get_task(name)
        except Exception as e:  # a broken task definition must not hide the others
            print(f"{name:<{width}}ERROR loading definition: {e}")
            continue
        status = ""
        if data is not None:
            root = data / task.data_folder
            missing = [f for f in task.annotation_files if not (root / f).exists()]
            status = "  [data: ok]" if not missing else f"  [data: missing {missing[0]}]"
        print(f"{name:<{width}}v{task.version:<6} {task.description}{status}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    t = command(sub, "tasks", _tasks, help="list registered tasks and their data status")
    t.add_argument("--data-dir", help="parent folder with one sub-folder per task (default: $VPBENCH_DATA_DIR)")
