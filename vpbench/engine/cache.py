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

from vpbench.types import Request, Response

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.refresh = refresh
        self.hits = 0
        self.misses = 0
        self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.execute(_SCHEMA)

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
        d = json.loads(row[0])
        d["sample_id"] = request.sample_id
        d["cached"] = True
        return Response(**d)

    def put(self, model_fp: str, request: Request, response: Response, media: str = "") -> None:
        if not request.greedy or response.error is not None:
            return
        d = {k: getattr(response, k) for k in
             ("text", "n_input_tokens", "n_output_tokens", "latency_s", "finish_reason")}
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, request, response) VALUES (?, ?, ?, ?)",
            (self.key(model_fp, request, media), model_fp, request.fingerprint, json.dumps(d)),
        )

    def close(self) -> None:
        self._db.close()
