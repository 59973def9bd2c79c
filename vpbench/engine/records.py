"""``records.jsonl``: one JSON line per finished sample, appended and flushed as it finishes.

The file is the source of truth for every number. A run killed mid-write leaves at most one
partial last line; loading drops it (and reports it) so that the sample is simply done again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable

from vpbench.errors import DataError
from vpbench.hashing import safe_dumps
from vpbench.types import Record


def record_to_json(record: Record) -> str:
    d = dataclasses.asdict(record)
    return safe_dumps(d, sort_keys=True)


def record_from_dict(d: dict, where: str) -> Record:
    try:
        d = dict(d)
        d["frame_timestamps_s"] = tuple(d.get("frame_timestamps_s", ()))
        d["options"] = tuple(d.get("options", ()))
        d["key_frames"] = tuple(d.get("key_frames", ()))
        return Record(**d)
    except TypeError as e:
        raise DataError(f"{where}: not a vpbench record ({e})") from e


class RecordStore:
    """Append-only per-task record file with resume support."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.dropped_partial_line = False

    def load(self, *, repair: bool = True) -> dict[str, Record]:
        """Records by sample id (the last one wins). A torn final line is dropped and truncated
        (``repair=False``: dropped only — for another process's file, which only it may change)."""
        if not self.path.exists():
            return {}
        out: dict[str, Record] = {}
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        good_bytes = 0
        for i, line in enumerate(lines):
            if not line.strip():
                good_bytes += len(line) + (1 if i < len(lines) - 1 else 0)
                continue
            try:
                rec = record_from_dict(json.loads(line), f"{self.path}:{i + 1}")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if i == len(lines) - 1 or all(not rest.strip() for rest in lines[i + 1:]):
                    self.dropped_partial_line = True
                    if repair:
                        with open(self.path, "r+b") as f:
                            f.truncate(good_bytes)
                    break
                raise DataError(f"{self.path}:{i + 1}: corrupt record line ({e}); fix or delete the line") from e
            out[rec.sample_id] = rec
            good_bytes += len(line) + 1
        if repair and raw and not raw.endswith(b"\n") and not self.dropped_partial_line:
            with open(self.path, "ab") as f:  # a complete last record lacking its newline: end it
                f.write(b"\n")
        return out

    def append(self, record: Record) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(record_to_json(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, records: Iterable[Record]) -> None:
        """Atomically replace the file (used by ``vpbench score`` after re-parsing)."""
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(record_to_json(r) + "\n")
        os.replace(tmp, self.path)
