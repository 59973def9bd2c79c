"""One side of a comparison: a run directory or a frozen baseline file, read into plain rows.

A ``TaskSide`` carries what decides comparability (task version, protocol fingerprint, parser tag,
sample-set hash, perception-gap options) and one ``Row`` per evaluated sample of the last run into
that directory (``sample_ids.json``), for the full pass and, when run, the key-absent pass.
Nothing here writes to the run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vpbench.errors import DataError
from vpbench.results import read_json


@dataclass(frozen=True)
class Row:
    """The per-sample facts a comparison needs (a record without prompt, frames and timing)."""

    sample_id: str
    cluster: str
    answer: str | None
    parsed: str | None
    scores: Mapping[str, float]
    groups: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    response: str | None = None
    """The raw response; None in a baseline frozen without ``--with-responses``."""

    @property
    def failed(self) -> bool:
        """A request error or an answer no parser could read."""
        return self.error is not None or self.parsed is None


@dataclass(frozen=True)
class TaskSide:
    name: str
    version: str
    protocol_fingerprint: str
    parser: str
    sample_set_hash: str
    n_total: int
    partial: bool
    rows: tuple[Row, ...]
    key_absent: tuple[Row, ...] = ()
    gap_options: str = ""
    """Canonical JSON of the perception-gap options ('' when the run had no key-absent pass)."""


@dataclass(frozen=True)
class RunSide:
    source: str
    kind: str
    """"run" (a run directory) or "baseline" (a frozen file)."""
    model: Mapping[str, Any]
    tasks: Mapping[str, TaskSide]
    stack: Mapping[str, str] = field(default_factory=dict)
    """Versions of the packages that change scores (``STACK``), from the run's manifest."""

    def task(self, name: str) -> TaskSide:
        if name not in self.tasks:
            raise DataError(f"{self.source} has no task '{name}' (it has: {', '.join(self.tasks) or 'none'})")
        return self.tasks[name]


STACK = ("transformers", "torch")
"""transformers 4.x and 5.x place Qwen2.5-VL's mRoPE positions differently (README), so scores of
one checkpoint can differ across stacks."""

ROW_FIELDS = ("sample_id", "cluster", "answer", "parsed", "scores", "groups", "error")


def row_from_record(d: Mapping[str, Any], where: str, *, keep_response: bool = True) -> Row:
    try:
        return Row(sample_id=str(d["sample_id"]), cluster=str(d.get("cluster") or ""), answer=d.get("answer"),
                   parsed=d.get("parsed"), scores={k: float(v) for k, v in dict(d.get("scores") or {}).items()},
                   groups={str(k): str(v) for k, v in dict(d.get("groups") or {}).items()}, error=d.get("error"),
                   response=d.get("response") if keep_response else None)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: not a vpbench record ({e}); re-run or re-score the run") from e


def read_rows(path: Path, ids: list[str] | None) -> tuple[Row, ...]:
    """Rows of a ``records*.jsonl`` (last line per id wins; a torn final line is ignored, never
    repaired here), restricted to and ordered by ``ids`` when given."""
    if not path.exists():
        return ()
    by_id: dict[str, Row] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            if all(not rest.strip() for rest in lines[i + 1:]):
                break  # a run killed mid-write; resuming it re-does that sample
            raise DataError(f"{path}:{i + 1}: corrupt record line ({e}); fix or delete the line") from e
        row = row_from_record(d, f"{path}:{i + 1}")
        by_id[row.sample_id] = row
    if ids is None:
        return tuple(by_id.values())
    missing = [s for s in ids if s not in by_id]
    if missing:
        raise DataError(f"{path}: {len(missing)} samples of the run's sample set have no record "
                        f"(e.g. {missing[0]}); the run is unfinished: re-run its command to resume it")
    return tuple(by_id[s] for s in ids)


def load_run_dir(run_dir: Path) -> RunSide:
    """Read a ``vpbench run`` output directory (manifest + records)."""
    run_dir = Path(run_dir)
    manifest = read_json(run_dir / "manifest.json")
    tasks: dict[str, TaskSide] = {}
    for name, info in manifest.get("tasks", {}).items():
        ids_file = run_dir / name / "sample_ids.json"
        ids = [str(s) for s in read_json(ids_file)] if ids_file.exists() else None
        try:
            gap = info.get("perception_gap")
            tasks[name] = TaskSide(
                name=name, version=str(info["version"]), protocol_fingerprint=str(info["protocol_fingerprint"]),
                parser=str(info["parser"]), sample_set_hash=str(info["sample_set_hash"]),
                n_total=int(info.get("n_total", 0)), partial=bool(info.get("partial", False)),
                rows=read_rows(run_dir / name / "records.jsonl", ids),
                key_absent=read_rows(run_dir / name / "records.key_absent.jsonl", ids) if gap else (),
                gap_options=json.dumps(gap, sort_keys=True) if gap else "")
        except KeyError as e:
            raise DataError(f"{run_dir / 'manifest.json'}: task '{name}' lacks {e}; it was not written by "
                            f"this vpbench version: re-run the task into a new directory") from e
    if not tasks:
        raise DataError(f"{run_dir / 'manifest.json'} lists no finished task; run `vpbench run` into it first")
    model = manifest.get("model", {})
    packages = manifest.get("environment", {}).get("packages", {})
    return RunSide(source=str(run_dir), kind="run",
                   model={"spec": model.get("spec"), "fingerprint": model.get("fingerprint")}, tasks=tasks,
                   stack={k: str(packages[k]) for k in STACK if packages.get(k)})


def load_side(path: Path) -> RunSide:
    """A run directory, or a baseline file written by ``vpbench baseline freeze``."""
    path = Path(path)
    if path.is_dir():
        return load_run_dir(path)
    if path.is_file():
        from vpbench.gate.baseline import read_baseline

        return read_baseline(path)
    raise DataError(f"{path} not found: give a vpbench run directory or a baseline file "
                    f"(`vpbench baseline freeze RUN --output FILE`)")
