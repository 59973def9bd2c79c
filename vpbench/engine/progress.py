"""One progress bar per phase; periodic log lines instead when CI / TQDM_DISABLE is set."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator


def bars_enabled() -> bool:
    return not (os.environ.get("CI") or os.environ.get("TQDM_DISABLE")) and sys.stderr.isatty()


class Phase:
    def __init__(self, name: str, total: int, enabled: bool = True) -> None:
        self.name, self.total, self.done = name, total, 0
        self.enabled = enabled  # False: no bar, no log lines (data-parallel ranks other than 0)
        self._bar = None
        self._last_log = time.monotonic()
        self._start = time.monotonic()
        if enabled and bars_enabled():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=name, unit="sample", leave=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last_log > 30 and self.total:
            self._last_log = time.monotonic()
            print(f"[vpbench] {self.name}: {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def phase(name: str, total: int, enabled: bool = True) -> Iterator[Phase]:
    p = Phase(name, total, enabled)
    try:
        yield p
    finally:
        p.close()
