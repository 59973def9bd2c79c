"""Helpers shared by the comparison scripts: timed child processes (wall, CPU, peak RSS), medians,
interleaving, and the machine description printed with every result table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    """One child-process run: wall seconds, user+sys CPU seconds, peak RSS in MiB."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float


def run_timed(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
              check: bool = True) -> Timing:
    """Run ``cmd`` to completion: its wall time, its own CPU time (user+sys) and peak RSS (wait4)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if check and proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return Timing(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)


def interleave(sides: Mapping[str, Callable[[], Timing]], repeats: int) -> dict[str, list[Timing]]:
    """Run each side ``repeats`` times, alternating the sides (ABAB...), so load drifts hit both."""
    out: dict[str, list[Timing]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            out[name].append(fn())
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
            f"{platform.python_version()}, load avg {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
            "(shared machine: other jobs running)")


def python() -> str:
    return sys.executable
