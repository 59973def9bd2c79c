"""Cross-run response cache: SQLite (WAL), content-addressed, deterministic requests only.

Key = sha256(model fingerprint, request fingerprint, media identity). The media identity (size and
mtime of the video the request shows) makes a replaced video at the same path a miss, not a stale
hit. Sampled (temperature > 0) requests are never cached. Safe for concurrent processes (SQLite locking, busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from vpbench.errors import ConfigError
from vpbench.types import Frames, Request, Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL DEFAULT (julianday('now'))
)
"""


class ResponseCache:
    def __init__(self, path: Path, *, refresh: bool = False) -> None:
        self.path = Path(path)
        self.refresh = refresh
        self.hits = 0
        self.misses = 0
        if self.path.is_dir():
            raise ConfigError(f"response cache {self.path} is a directory; Fix: give --cache-path a file name "
                              f"(e.g. {self.path / 'response_cache.sqlite'}), or pass --no-cache")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=60000")
            self._db.execute(_SCHEMA)
            self._db.execute("SELECT key, response FROM responses LIMIT 1").fetchall()
        except (sqlite3.DatabaseError, OSError) as e:
            raise ConfigError(f"response cache {self.path} cannot be used ({e}); Fix: delete or move the file "
                              f"(it only holds cached responses; the run's records are kept), give another "
                              f"--cache-path, or pass --no-cache") from e

    @staticmethod
    def key(model_fp: str, request: Request, media: str = "") -> str:
        return hashlib.sha256(f"{model_fp}\0{request.fingerprint}\0{media}".encode()).hexdigest()

    def get(self, model_fp: str, request: Request, media: str = "") -> Response | None:
        if not request.greedy or self.refresh:
            self.misses += 1
            return None
        row = self._db.execute(
            "SELECT response FROM responses WHERE key = ?", (self.key(model_fp, request, media),)
        ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        try:
            d = json.loads(row[0])
            d["sample_id"] = request.sample_id
            d["cached"] = True
            if d.get("frame_timestamps_s") is not None:
                d["frame_timestamps_s"] = tuple(d["frame_timestamps_s"])
            hit = Response(**d)
            if not isinstance(hit.text, str):
                raise TypeError("text is not a string")
        except (ValueError, TypeError, AttributeError):  # an unreadable entry is a miss, regenerated and replaced
            self.hits -= 1
            self.misses += 1
            return None
        return hit

    def holds(self, model_fp: str, request: Request, media: str = "") -> bool:
        """Whether :meth:`get` would find an entry (not counted as a hit or a miss)."""
        if not request.greedy or self.refresh:
            return False
        row = self._db.execute("SELECT 1 FROM responses WHERE key = ?",
                               (self.key(model_fp, request, media),)).fetchone()
        return row is not None

    def put(self, model_fp: str, request: Request, response: Response, media: str = "",
            frames: Frames | None = None) -> None:
        if not request.greedy or response.error is not None:
            return
        d: dict = {k: getattr(response, k) for k in
                   ("text", "n_input_tokens", "n_output_tokens", "latency_s", "finish_reason")}
        if frames is not None:
            d["frame_timestamps_s"] = [round(t, 4) for t in frames.timestamps_s]
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, request, response) VALUES (?, ?, ?, ?)",
            (self.key(model_fp, request, media), model_fp, request.fingerprint, json.dumps(d)),
        )

    def close(self) -> None:
        self._db.close()
