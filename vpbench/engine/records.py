"""``records.jsonl``: one JSON line per finished sample, appended as its batch finishes.

The file is the source of truth for every number. Writes are group-committed
(:class:`RecordWriter`): each finished batch goes to the file in one ``write`` and is flushed to
the operating system at once, so a killed process loses at most the batch still being generated;
``fsync`` runs at most once per ``fsync_interval_s`` (and on close), so a machine crash or power
loss loses at most that many seconds of records. A run killed mid-write leaves at most one
partial last line; loading drops it (and reports it) so that the sample is simply done again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Iterable, Mapping

from vpbench.errors import DataError
from vpbench.hashing import safe_dumps
from vpbench.types import Record


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


def _json_default(obj: object) -> object:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def record_to_json(record: Record) -> str:
    """One JSON line (no newline), keys sorted, lone surrogates escaped (``safe_dumps``). Fields
    are read shallowly (``dataclasses.asdict`` deep-copies every value first, which cost more than
    the encoding); the bytes are the same."""
    d = {name: getattr(record, name) for name in _RECORD_FIELDS}
    return safe_dumps(d, sort_keys=True, default=_json_default)


def record_from_dict(d: dict, where: str) -> Record:
    try:
        d = dict(d)
        d["frame_timestamps_s"] = tuple(d.get("frame_timestamps_s", ()))
        d["options"] = tuple(d.get("options", ()))
        d["key_frames"] = tuple(d.get("key_frames", ()))
        return Record(**d)
    except TypeError as e:
        raise DataError(f"{where}: not a vpbench record ({e})") from e


_SHARED_FIELDS = ("task", "cluster", "groups", "answer", "options", "meta", "protocol_fingerprint", "response",
                  "parsed", "parser", "scores", "error", "variant", "key_frames")


def _key(v: Any) -> Any:
    return ("f", v.hex()) if isinstance(v, float) else (type(v), v)


class ValuePool:
    """Shares equal values between many records or samples (``RecordStore.load(compact=True)``,
    ``validation.load_task_samples``): short strings, option tuples, flat groups/meta/scores
    mappings. Shared values must be treated as read-only."""

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}

    def share(self, value: Any) -> Any:
        """``value``, or an equal one of the same types seen before (1, 1.0, True and -0.0/0.0 are
        kept apart: they encode differently)."""
        try:
            if isinstance(value, dict):
                key: Any = ("d", tuple((_key(k), _key(v)) for k, v in value.items()))
            elif isinstance(value, (list, tuple)):
                key = ("t", tuple(_key(v) for v in value))
                value = tuple(value)
            elif isinstance(value, str) and len(value) <= 64:
                key = value
            else:
                return value
            return self._values.setdefault(key, value)
        except TypeError:  # unhashable parts (lists, nested dicts): kept as they are
            return value

    def record(self, d: dict, where: str) -> Record:
        share = self.share
        for k in _SHARED_FIELDS:  # sample ids and request fingerprints are unique: not pooled
            if k in d:
                d[k] = share(d[k])
        d["timing"] = {}
        d["frame_timestamps_s"] = ()
        return record_from_dict(d, where)


class RecordStore:
    """Append-only per-task record file with resume support."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.dropped_partial_line = False

    def load(self, *, repair: bool = True, compact: bool = False) -> dict[str, Record]:
        """Records by sample id (the last one wins). A torn final line is dropped and truncated
        (``repair=False``: dropped only — for another process's file, which only it may change).

        The file is read line by line (never whole). ``compact=True`` returns the records for
        aggregation: ``timing`` and ``frame_timestamps_s`` are left empty and equal values
        (strings, option tuples, groups/meta/scores mappings) are shared between records, so that
        a large run's records take a fraction of the memory; such records must be treated as
        read-only and never written back."""
        if not self.path.exists():
            return {}
        out: dict[str, Record] = {}
        pool: ValuePool | None = ValuePool() if compact else None
        good_bytes = 0
        torn_at: int | None = None
        error: ValueError | None = None
        ends_without_newline = False
        with open(self.path, "rb") as f:
            for i, line in enumerate(f):
                ends_without_newline = not line.endswith(b"\n")
                if torn_at is not None:
                    if line.strip():
                        raise DataError(f"{self.path}:{torn_at + 1}: corrupt record line ({error}); fix or delete "
                                        f"the line") from error
                    continue
                if not line.strip():
                    good_bytes += len(line)
                    continue
                try:
                    d = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    torn_at, error = i, e
                    continue
                where = f"{self.path}:{i + 1}"
                rec = record_from_dict(d, where) if pool is None else pool.record(d, where)
                out[rec.sample_id] = rec
                good_bytes += len(line)
        if torn_at is not None:
            self.dropped_partial_line = True
            if repair:
                with open(self.path, "r+b") as f:
                    f.truncate(good_bytes)
        elif repair and ends_without_newline and good_bytes:
            with open(self.path, "ab") as f:  # a complete last record lacking its newline: end it
                f.write(b"\n")
        return out

    def append(self, record: Record) -> None:
        """Append one record and fsync it (one-off writes; loops use :meth:`writer`)."""
        with self.writer(fsync_interval_s=0.0) as w:
            w.commit([record])

    def writer(self, fsync_interval_s: float = 1.0) -> "RecordWriter":
        """A group-committing appender to this file (a context manager)."""
        return RecordWriter(self.path, fsync_interval_s)

    def rewrite(self, records: Iterable[Record]) -> None:
        """Atomically replace the file (used by ``vpbench score`` after re-parsing)."""
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(record_to_json(r) + "\n")
        os.replace(tmp, self.path)


class RecordWriter:
    """Append-only group commit of records to one JSONL file.

    ``commit(batch)`` writes the whole batch with one ``write`` and flushes it to the OS: after it
    returns, the batch survives a kill of this process. ``fsync`` runs when ``fsync_interval_s``
    has passed since the last one (every commit when 0) and on ``close``, bounding what an OS crash
    can lose to that interval. Lines are complete JSON objects, so a kill during ``write`` leaves
    at most one torn last line, which :meth:`RecordStore.load` drops.
    """

    def __init__(self, path: Path, fsync_interval_s: float = 1.0) -> None:
        if fsync_interval_s < 0:
            raise ValueError(f"fsync_interval_s must be >= 0, got {fsync_interval_s}")
        self.path = Path(path)
        self.fsync_interval_s = float(fsync_interval_s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = open(self.path, "ab")
        self._last_sync = time.monotonic()
        self._unsynced = False
        self.n_written = 0
        self.n_fsyncs = 0

    def commit(self, records: Iterable[Record]) -> None:
        """Write ``records`` as one batch and flush it to the OS (fsync per the interval)."""
        if self._file is None:
            raise ValueError(f"{self.path}: record writer is closed")
        lines = [record_to_json(r) + "\n" for r in records]
        if not lines:
            return
        self._file.write("".join(lines).encode("utf-8"))
        self._file.flush()
        self.n_written += len(lines)
        self._unsynced = True
        if time.monotonic() - self._last_sync >= self.fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        """fsync what was committed so far."""
        if self._file is not None and self._unsynced:
            os.fsync(self._file.fileno())
            self.n_fsyncs += 1
            self._unsynced = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self.sync()
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
