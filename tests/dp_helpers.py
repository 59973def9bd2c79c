"""A backend for data-parallel tests, loaded in torchrun workers through ``VPBENCH_BACKENDS``
(``counting=tests.dp_helpers:counting``): the ``dummy:random`` answers, plus

- every generated sample id appended to ``$VPBENCH_TEST_GENLOG`` (one line: ``rank sample_id``),
  so a test counts how often each sample was generated over several runs;
- with ``$VPBENCH_TEST_DIE_AFTER=N``, the process dies (``os._exit(9)``, like a kill -9) when asked
  for its (N+1)-th sample, after sleeping ``$VPBENCH_TEST_DIE_SLEEP`` seconds (default 1) so the
  sibling ranks reach their own death point instead of being torn down mid-write by torchrun.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

from vpbench.models.base import Prepared
from vpbench.models.dummy import DummyBackend
from vpbench.types import Response


class CountingBackend(DummyBackend):
    def __init__(self) -> None:
        super().__init__("random", seed=7, batch_size=1, needs_frames=False)
        self.n = 0

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        die_after = int(os.environ.get("VPBENCH_TEST_DIE_AFTER", "0") or 0)
        if die_after and self.n + len(batch) > die_after:
            time.sleep(float(os.environ.get("VPBENCH_TEST_DIE_SLEEP", "1")))
            os._exit(9)
        self.n += len(batch)
        with open(os.environ["VPBENCH_TEST_GENLOG"], "a", encoding="utf-8") as f:
            for p in batch:
                f.write(f"{os.environ.get('RANK', '0')} {p.request.sample_id}\n")
        return super().generate(batch)


def counting(arg: str, spec: str, options) -> CountingBackend:
    return CountingBackend()
