"""`vpbench synth`: generated data in a benchmark's native format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpbench.commands._base import command

ORDER = 60


def _synth(ns: argparse.Namespace) -> int:
    from vpbench.registry import get_task, resolve_task_list

    names = resolve_task_list(ns.task)
    out = Path(ns.output)
    done: set[str] = set()
    for name in names:
        task = get_task(name)
        if task.synth is None:
            print(f"{name}: no generator", file=sys.stderr)
            return 2
        target = out / task.data_folder if len(names) > 1 else out
        if str(target) in done:  # a task variant sharing another task's files
            continue
        task.synth(target, ns.seed)
        done.add(str(target))
        print(f"{name}: generated data in {target}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    g = command(sub, "synth", _synth, help="write generated data in a benchmark's native format")
    g.add_argument("task", help="task name or 'all'")
    g.add_argument("--output", required=True)
    g.add_argument("--seed", type=int, default=0, help="generator seed")
