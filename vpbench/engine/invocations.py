"""Cumulative manifest counters: a resumed run adds to what earlier invocations did.

Each task entry of ``manifest.json`` keeps ``invocations`` (one entry per ``vpbench run`` that
finished the task: time, argv, n_generated, n_resumed, cache hits/misses) and its counters are
the sums over them, so a run finished in three invocations reports every sample it generated,
not only the last invocation's. The run-level ``cache`` block is summed the same way.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

COUNTERS = ("n_generated", "n_resumed", "cache_hits", "cache_misses")


def invocation(argv: Sequence[str], **counts: int) -> dict[str, Any]:
    return {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": list(argv),
            **{k: int(counts.get(k, 0)) for k in COUNTERS}}


def with_invocation(previous: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The task's cumulative counters and history after ``entry`` (its previous entry: ``previous``)."""
    history = [dict(h) for h in (previous or {}).get("invocations", []) if isinstance(h, Mapping)]
    history.append(dict(entry))
    totals = {k: sum(int(h.get(k, 0) or 0) for h in history) for k in COUNTERS}
    return {**totals, "invocations": history}


def cumulative_cache(previous: Mapping[str, Any] | None, hits: int, misses: int) -> dict[str, int]:
    prev = previous or {}
    return {"hits": int(prev.get("hits", 0) or 0) + hits, "misses": int(prev.get("misses", 0) or 0) + misses}
