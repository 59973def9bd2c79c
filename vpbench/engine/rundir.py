"""The run directory as a resource: made usable before any work, held by one process at a time.

``prepare_output`` refuses an ``--output`` that is a file or cannot be written (before a model
loads). ``RunLock`` takes an exclusive ``flock`` on ``<out>/.vpbench.lock`` for the whole run, so
two runs into one directory cannot both generate and append; the second is refused with the
holder's pid, host, start time and command. The kernel drops the lock when its holder dies (even
by ``kill -9``), so a crashed run never blocks its resume.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Sequence

from vpbench.errors import ConfigError, RunLocked

LOCK_NAME = ".vpbench.lock"


def prepare_output(out: Path) -> Path:
    """``out`` created if needed and checked writable; a clear ``ConfigError`` otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {out} is a file, not a directory; Fix: give a directory path "
                          f"(a run writes manifest.json, results.json and one folder per task into it)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".vpbench-write-test-"):
            pass
    except OSError as e:
        raise ConfigError(f"--output {out} cannot be written ({e.strerror or e}); Fix: choose a writable "
                          f"directory, or fix its permissions") from e
    return out


class RunLock:
    """Exclusive lock on a run directory (context manager)."""

    def __init__(self, out: Path, argv: Sequence[str] = ()) -> None:
        self.path = Path(out) / LOCK_NAME
        self.argv = list(argv)
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLocked(
                f"{self.path.parent} is in use by another vpbench run ({holder}); two runs into one directory "
                f"would both generate and append. Fix: wait for it to finish (then re-run to resume), "
                f"or use another --output") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": self.argv}
        os.write(fd, json.dumps(info, ensure_ascii=True).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 65536).decode() or "{}")
        return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: "
                f"{' '.join(info.get('argv') or []) or '?'}")
    except (OSError, ValueError):
        return "holder unknown"
