"""The append-only scoring history of a run (``manifest.json`` → ``scoring_history``).

Each ``vpbench score`` appends one entry saying when it ran, with which parser and statistics,
and what changed: per task, the metrics and counts whose values moved and how many records got a
different parsed answer. Nothing earlier is rewritten, so a re-scored run says it was re-scored.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import vpbench
from vpbench.types import TaskResult


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}


def task_change(before: Mapping[str, Any] | None, after: TaskResult, parser_before: str | None,
                parser_after: str, n_reparsed: int) -> dict[str, Any]:
    """What one task's re-scoring changed, from its previous ``result.json`` dict (or None)."""
    before = before or {}
    old_metrics = {m["name"]: m["value"] for m in before.get("metrics", ())}
    new_metrics = {m.name: m.value for m in after.metrics}
    return {
        "parser": [parser_before, parser_after] if parser_before != parser_after else parser_after,
        "n_records_reparsed": n_reparsed,
        "metrics_changed": _changed(old_metrics, new_metrics),
        "counts_changed": _changed(dict(before.get("counts", {})), dict(after.counts)),
    }


def scoring_entry(tasks: Mapping[str, Mapping[str, Any]], stats: Mapping[str, Any], argv: Sequence[str] = (),
                  source: str | None = None) -> dict[str, Any]:
    """One history entry: time, vpbench version, argv, stats options, per-task changes and, for
    ``--output DIR``, the run directory it was copied from."""
    entry: dict[str, Any] = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "vpbench": vpbench.__version__,
        "argv": list(argv),
        "stats": dict(stats),
        "tasks": {name: dict(change) for name, change in tasks.items()},
    }
    if source is not None:
        entry["copied_from"] = source
    return entry
