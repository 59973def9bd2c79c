"""Append-only JSONL outputs and the per-item state file that make a craft run resumable.

``JsonlSink``: a JSONL file of records with an ``"id"``. On open, a trailing partial line (a crash mid-write:
bytes after the last newline) is cut off and counted in ``truncated_bytes`` (it was never a complete record);
every complete line is kept as it is, a line that is not a JSON object with an id is kept and counted in
``corrupt_lines``. ``write`` appends one line and flushes, and skips a record whose id is already in the
file, so re-running an item writes only what is missing, in the same order.

``StateFile`` (``state.jsonl``): one line per finished item, ``{"item", "status": "done"|"error",
"retryable", "sft": [ids], "rl": [ids], "rejected": [ids], "report": {...}, "config_sha256"}``; the last line of
an item wins. ``config_sha256`` is ``config_fingerprint`` of the craft config (output paths and transport
settings left out): a state file written under another fingerprint is refused (ConfigError), so one output dir
never mixes records crafted with different protocols / scorers / annotators.
An item is finished when its last state says so (a retryable error never is) and every id it lists is present
in the outputs: deleting an output line makes the item run again, and only that line is written back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from vpbench.errors import ConfigError
from vpbench.hashing import stable_hash

# config keys that do not change what is crafted (where outputs go, how the endpoint is reached, how many items)
FINGERPRINT_IGNORED = (
    ("output", "dir"), ("output", "retry_errors"), ("input", "limit"),
    ("annotate", "endpoint", "base_url"), ("annotate", "endpoint", "api_key"), ("annotate", "endpoint", "timeout_s"),
    ("annotate", "endpoint", "max_retries"), ("annotate", "endpoint", "backoff_s"),
    ("annotate", "endpoint", "backoff_max_s"), ("annotate", "endpoint", "cache_path"),
)


def config_fingerprint(cfg: dict[str, Any]) -> str:
    """Hash of a ``CraftConfig.to_dict()`` without the ``FINGERPRINT_IGNORED`` keys."""
    import copy

    c = copy.deepcopy(cfg)
    for path in FINGERPRINT_IGNORED:
        node: Any = c
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return stable_hash(c, length=32)


class JsonlSink:
    """Append-only, id-deduplicated JSONL writer (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: set[str] = set()
        self.truncated_bytes = 0
        self.corrupt_lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                self.truncated_bytes = len(data) - end
                with open(path, "r+b") as f:
                    f.truncate(end)
            for line in data[:end].decode("utf-8", errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    self.ids.add(str(obj["id"]))
                except (ValueError, KeyError, TypeError):
                    self.corrupt_lines += 1
        self._f: IO[str] = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> bool:
        """Append ``record`` unless its id is already written; returns whether it was written."""
        rid = str(record["id"])
        if rid in self.ids:
            return False
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        self.ids.add(rid)
        return True

    def close(self) -> None:
        self._f.close()


class StateFile:
    """Per-item progress (module docstring)."""

    def __init__(self, path: Path, fingerprint: str | None = None) -> None:
        self.sink_path = path
        self.fingerprint = fingerprint
        self.entries: dict[str, dict[str, Any]] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                with open(path, "r+b") as f:
                    f.truncate(end)
            for line in data[:end].decode("utf-8", errors="replace").splitlines():
                try:
                    obj = json.loads(line)
                    self.entries[str(obj["item"])] = obj
                except (ValueError, KeyError, TypeError):
                    continue
        if fingerprint is not None:
            other = sorted({str(e.get("config_sha256")) for e in self.entries.values()} - {fingerprint})
            if other:
                raise ConfigError(
                    f"{path.parent}: the craft outputs there were made with another craft config (config_sha256 "
                    f"{', '.join(other)}; this config's is {fingerprint}): protocol, scorer, annotator, validation or "
                    "prompt settings changed. Use a new output.dir (or restore the previous settings); one output "
                    "dir never mixes records crafted with different settings")
        self._f: IO[str] = open(path, "a", encoding="utf-8")

    def finished(self, item: str, sinks: dict[str, JsonlSink], retry_errors: bool = False) -> bool:
        st = self.entries.get(item)
        if st is None or st.get("retryable") or (retry_errors and st.get("status") == "error"):
            return False
        return all(i in sinks[k].ids for k in ("sft", "rl", "rejected") for i in st.get(k, []))

    def record(self, entry: dict[str, Any]) -> None:
        if self.fingerprint is not None:
            entry = {**entry, "config_sha256": self.fingerprint}
        self._f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        self._f.flush()
        self.entries[str(entry["item"])] = entry

    def close(self) -> None:
        self._f.close()


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
