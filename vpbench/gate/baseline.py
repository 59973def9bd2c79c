"""A frozen baseline: the per-sample facts of a run, small enough to commit to a repository.

File layout (JSON, gzip-compressed when the name ends in ``.gz``)::

    {"vpbench_baseline": 1,
     "source": {"run_dir", "model": {"spec", "fingerprint"}, "stack": {"transformers", "torch"},
                "frozen_at"},
     "tasks": {TASK: {"version", "protocol_fingerprint", "parser", "sample_set_hash", "n_total",
                      "partial", "gap_options",
                      "columns": ["sample_id", "cluster", "answer", "parsed", "scores", "groups",
                                  "error"(, "response")],
                      "rows": [[...one list per sample, in column order...]],
                      "key_absent_rows": [[...]]}}}

No videos, prompts or timings; raw responses only with ``with_responses``. ``regress`` and
``compare`` accept the file wherever they accept a run directory.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from vpbench.errors import ConfigError, DataError
from vpbench.gate.sides import ROW_FIELDS, Row, RunSide, TaskSide, load_run_dir

FORMAT_VERSION = 1


def _row_values(row: Row, columns: Sequence[str]) -> list[Any]:
    return [dict(getattr(row, c)) if c in ("scores", "groups") else getattr(row, c) for c in columns]


def freeze(run_dir: Path, output: Path, *, with_responses: bool = False,
           tasks: Sequence[str] | None = None) -> dict[str, int]:
    """Write ``output`` from the run in ``run_dir``; returns rows written per task."""
    side = load_run_dir(run_dir)
    names = list(tasks) if tasks else list(side.tasks)
    columns = list(ROW_FIELDS) + (["response"] if with_responses else [])
    body: dict[str, Any] = {}
    for name in names:
        t = side.task(name)
        body[name] = {
            "version": t.version, "protocol_fingerprint": t.protocol_fingerprint, "parser": t.parser,
            "sample_set_hash": t.sample_set_hash, "n_total": t.n_total, "partial": t.partial,
            "gap_options": t.gap_options, "columns": columns,
            "rows": [_row_values(r, columns) for r in t.rows],
            "key_absent_rows": [_row_values(r, columns) for r in t.key_absent],
        }
    doc = {"vpbench_baseline": FORMAT_VERSION,
           "source": {"run_dir": str(run_dir), "model": dict(side.model), "stack": dict(side.stack),
                      "frozen_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
           "tasks": body}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    if output.name.endswith(".gz"):
        tmp.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    return {name: len(body[name]["rows"]) for name in names}


def _rows(raw: Any, columns: list[str], where: str) -> tuple[Row, ...]:
    if not isinstance(raw, list):
        raise DataError(f"{where}: expected a list of rows")
    out = []
    for i, values in enumerate(raw):
        if not isinstance(values, list) or len(values) != len(columns):
            raise DataError(f"{where}[{i}]: expected {len(columns)} values ({', '.join(columns)})")
        d = dict(zip(columns, values))
        out.append(Row(sample_id=str(d["sample_id"]), cluster=str(d["cluster"] or ""), answer=d["answer"],
                       parsed=d["parsed"], scores={k: float(v) for k, v in (d["scores"] or {}).items()},
                       groups={str(k): str(v) for k, v in (d["groups"] or {}).items()}, error=d["error"],
                       response=d.get("response")))
    return tuple(out)


def read_baseline(path: Path) -> RunSide:
    path = Path(path)
    try:
        data = path.read_bytes()
        text = gzip.decompress(data).decode("utf-8") if data[:2] == b"\x1f\x8b" else data.decode("utf-8")
        doc = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a vpbench baseline file ({e}); make one with "
                        f"`vpbench baseline freeze RUN --output {path.name}`") from e
    if not isinstance(doc, dict) or doc.get("vpbench_baseline") != FORMAT_VERSION:
        raise DataError(f"{path}: not a version-{FORMAT_VERSION} vpbench baseline (no \"vpbench_baseline\": "
                        f"{FORMAT_VERSION}); re-freeze it with `vpbench baseline freeze`")
    tasks: dict[str, TaskSide] = {}
    for name, t in doc.get("tasks", {}).items():
        where = f"{path}: task '{name}'"
        try:
            columns = [str(c) for c in t["columns"]]
            missing = [c for c in ROW_FIELDS if c not in columns]
            if missing:
                raise DataError(f"{where}: columns lack {missing}")
            tasks[name] = TaskSide(
                name=name, version=str(t["version"]), protocol_fingerprint=str(t["protocol_fingerprint"]),
                parser=str(t["parser"]), sample_set_hash=str(t["sample_set_hash"]), n_total=int(t["n_total"]),
                partial=bool(t["partial"]), rows=_rows(t["rows"], columns, f"{where} rows"),
                key_absent=_rows(t.get("key_absent_rows", []), columns, f"{where} key_absent_rows"),
                gap_options=str(t.get("gap_options", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: malformed ({e!r}); re-freeze it with `vpbench baseline freeze`") from e
    if not tasks:
        raise ConfigError(f"{path}: the baseline holds no task")
    source = doc.get("source", {})
    return RunSide(source=str(path), kind="baseline", model=dict(source.get("model", {})), tasks=tasks,
                   stack={str(k): str(v) for k, v in dict(source.get("stack", {})).items()})
