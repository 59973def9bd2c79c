"""Run-directory files: ``results.json`` (manifest + per-task results) and the printed table."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

from vpbench.errors import DataError
from vpbench.hashing import safe_dumps
from vpbench.types import MetricResult, TaskResult

SCHEMA_VERSION = 1


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(safe_dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise DataError(f"{path} not found: is this a vpbench run directory?") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); Fix: restore the file or use a new run directory") from e
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e}); Fix: check that it is a readable file") from e


def task_result_to_dict(r: TaskResult) -> dict[str, Any]:
    return dataclasses.asdict(r)


def task_result_from_dict(d: Mapping[str, Any]) -> TaskResult:
    d = dict(d)
    d["metrics"] = tuple(MetricResult(**m) for m in d["metrics"])
    d["by_group"] = {k: tuple(MetricResult(**m) for m in v) for k, v in d["by_group"].items()}
    d["notes"] = tuple(d.get("notes", ()))
    return TaskResult(**d)


def format_metric(m: MetricResult, scale: float = 100.0) -> str:
    """'57.30 [55.1, 59.4]': the value and its CI, ×100 for display."""
    ci = ""
    if m.ci_low is not None and m.ci_high is not None:
        ci = f" [{m.ci_low * scale:.1f}, {m.ci_high * scale:.1f}]"
    return f"{m.value * scale:.2f}{ci}"


TABLE_UNITS = "scores in % (0-100) with 95% CIs [low, high]; the JSON files store fractions (0-1)"


def render_table(results: Mapping[str, TaskResult]) -> str:
    """Plain-text table: one block per task, metrics ×100 with 95% CIs, then per-group rows."""
    lines = [TABLE_UNITS] if results else []
    for name, r in results.items():
        c = r.counts
        head = (f"{name}  (n={c.get('n_evaluated', '?')}/{c.get('n_total', '?')}, "
                f"scorable={c.get('n_scorable', '?')}, failed={c.get('n_failed', 0)}, "
                f"unparsed={c.get('n_unparsed', 0)}{', PARTIAL' if r.partial else ''})")
        lines.append(head)
        for m in r.metrics:
            lines.append(f"  {m.name:<34} {format_metric(m)}")
        for group, ms in r.by_group.items():
            lines.append(f"  by {group}:")
            for m in ms:
                lines.append(f"    {m.name:<32} {format_metric(m)}  (n={m.n})")
        for note in r.notes:
            lines.append(f"  note: {note}")
    return "\n".join(lines)
