"""Run what a plan is missing, in order (the same commands ``--plan`` prints; trainings as their own
processes, other vpbench commands in this one), then render the table from the finished evaluations.

A failed step is reported with its log and blocks only what depends on it: the other variants still
run and the table shows the failed cells with the reason. Nothing finished is run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from vpbench.reports.plan import MARKER, Plan, Step
from vpbench.reports.spec import RowSpec


@dataclass(frozen=True)
class StepResult:
    step: str
    status: str                       # done (reused) | ran | failed | missing | blocked
    reason: str = ""


def describe(plan: Plan) -> list[tuple[Step, str]]:
    """(step, status) for ``--plan``: done / to run / cannot run: <reason> / not needed (only cells
    that cannot be made use it)."""
    out = []
    needed = plan.needed()
    for s in plan.steps:
        why = plan.blocked_by(s)
        if s.done():
            status = "done"
        elif why:
            status = f"cannot run: {why}"
        else:
            status = "to run" if s.id in needed else "not needed: its cells cannot be made (see below)"
        out.append((s, status))
    return out


def _argv(step: Step) -> list[str]:
    if step.argv[0] == "vpbench":
        return [sys.executable, "-m", "vpbench", *step.argv[1:]]
    return list(step.argv)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run a step in this process with ``n`` torch intra-op threads (0: unchanged), restored after."""
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_process(step: Step, f) -> int:
    """A vpbench command other than ``train`` runs in this process (``vpbench.cli.main`` on the same
    argv, output to the step's log): no interpreter start and torch import per step. Trainings run as
    their own process, as ``vpbench train`` launches them."""
    import traceback

    from vpbench.cli import main

    with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        try:
            return int(main(list(step.argv[1:])))
        except SystemExit as e:  # argparse errors
            return int(e.code or 0) if isinstance(e.code, int) else 2
        except Exception:  # an internal error fails this step, not the whole reproduce
            traceback.print_exc(file=f)
            return 4


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run_one(step: Step, echo: Callable[[str], None], threads: int = 0) -> StepResult:
    wall, cpu = time.monotonic(), _cpu_seconds()
    result = _run_logged(step, echo, threads)
    echo(f"  {result.status} in {time.monotonic() - wall:.1f} s wall, {_cpu_seconds() - cpu:.1f} s CPU")
    return result


def _run_logged(step: Step, echo: Callable[[str], None], threads: int) -> StepResult:
    log = step.output.parent / f"{step.output.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])]),
        **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {})}
    with open(log, "w", encoding="utf-8") as f:
        if step.argv[0] == "vpbench" and step.argv[1:2] != ("train",):
            with _torch_threads(threads):
                code = _in_process(step, f)
        else:
            f.flush()
            code = subprocess.run(_argv(step), stdout=f, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        echo(f"  failed (exit {code}); log {log}:\n    " + "\n    ".join(tail))
        return StepResult(step.id, "failed", f"failed: step {step.id} exited {code} (log: {log})")
    marker = {"fingerprint": step.fingerprint, "step": step.id, "argv": list(step.argv),
              "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **step.meta}
    step.output.mkdir(parents=True, exist_ok=True)
    (step.output / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    return StepResult(step.id, "ran")


def execute(plan: Plan, echo: Callable[[str], None] = print) -> dict[str, StepResult]:
    """Run every runnable step that is not done; returns each step's outcome by id."""
    results: dict[str, StepResult] = {}
    todo = [s for s in plan.steps if not s.done()]
    needed = plan.needed()
    runnable = [s for s in todo if s.id in needed]
    for s in plan.steps:
        if s.done():
            results[s.id] = StepResult(s.id, "done")
    for i, s in enumerate(runnable, 1):
        failed = next((results[n] for n in s.needs if results.get(n) and results[n].status in ("failed", "blocked")),
                      None)
        if failed:
            results[s.id] = StepResult(s.id, "blocked", failed.reason)
            continue
        echo(f"[{i}/{len(runnable)}] {s.id}: {s.command}")
        results[s.id] = _run_one(s, echo, plan.torch_threads)
    for s in todo:
        if s.id not in results:
            results[s.id] = StepResult(s.id, "missing", plan.blocked_by(s))
    return results


def rows_with_reasons(plan: Plan, results: dict[str, StepResult] | None = None) -> tuple[list[RowSpec], list[Path]]:
    """The plan's rows, each missing one carrying why, and the finished eval dirs to load."""
    import dataclasses

    rows, dirs = [], []
    for row in plan.rows:
        ids = plan.evals.get(row.key, ())
        done = [plan.step(i) for i in ids if plan.step(i).done()]
        dirs += [s.output for s in done]
        reason = row.reason
        if not reason and not done and ids:
            first = plan.step(ids[0])
            r = (results or {}).get(first.id)
            reason = r.reason if r and r.reason else (plan.blocked_by(first) or "not run")
        rows.append(dataclasses.replace(row, reason=reason) if reason != row.reason else row)
    return rows, dirs
