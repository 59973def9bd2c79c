"""``replay:FILE`` — responses made elsewhere, as JSONL of {"sample_id", "response"} lines.

An optional "task" field disambiguates ids shared by two tasks. Needs no frames and no videos:
scoring predictions requires only the annotation files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vpbench.errors import DataError
from vpbench.hashing import file_sha256
from vpbench.models.base import BackendBase, Prepared
from vpbench.types import Response, Sample


def write_replay(path: Path, task: str, responses: Iterable[tuple[str, str]]) -> int:
    """Write (sample_id, response) pairs as a ``replay:FILE`` JSONL for ``task``; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for sample_id, response in responses:
            f.write(json.dumps({"sample_id": sample_id, "task": task, "response": response}, ensure_ascii=False) + "\n")
            n += 1
    return n


class ReplayBackend(BackendBase):
    name = "replay"
    needs_frames = False
    fix = "Fix: add the missing sample ids to the replay file."

    def __init__(self, path: Path, batch_size: int = 64) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        if not self.path.is_file():
            raise DataError(f"replay file not found: {self.path} (Fix: pass replay:FILE with a JSONL file of "
                            f'{{"sample_id", "response"}} lines)')
        self._by_task: dict[tuple[str | None, str], str] = {}
        try:  # odd bytes in a response are kept (as surrogate escapes), never a reason to stop
            text = self.path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError as e:
            raise DataError(f"replay file {self.path} cannot be read ({e}); Fix: pass a readable JSONL file") from e
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{self.path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not JSON ({e}); each line must be "
                                f'{{"sample_id": ..., "response": ...}}') from e
            if not isinstance(row, dict) or "sample_id" not in row or "response" not in row:
                raise DataError(f'{where}: each line needs "sample_id" and "response" keys')
            if not isinstance(row["response"], str):
                raise DataError(f"{where}: \"response\" must be a string, got {type(row['response']).__name__}")
            key = (row.get("task"), str(row["sample_id"]))
            if key in self._by_task:
                raise DataError(f"{where}: duplicate response for sample {key[1]!r}")
            self._by_task[key] = row["response"]

    def lookup(self, task: str, sample_id: str) -> str | None:
        hit = self._by_task.get((task, sample_id))
        return hit if hit is not None else self._by_task.get((None, sample_id))

    def has(self, task: str, sample_id: str) -> bool:
        return self.lookup(task, sample_id) is not None

    def check_samples(self, task: str, samples: Sequence[Sample]) -> Mapping[str, str]:
        """Every sample needs a response (no videos are needed)."""
        return {s.id: "no response in the replay file" for s in samples if not self.has(task, s.id)}

    def fingerprint(self) -> str:
        return "replay-" + file_sha256(self.path)[:16]

    def describe(self) -> dict[str, Any]:
        return {"backend": "replay", "path": str(self.path), "sha256": file_sha256(self.path),
                "n_responses": len(self._by_task)}

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        out = []
        for p in batch:
            text = self.lookup(p.request.task, p.request.sample_id)
            if text is None:
                out.append(Response(p.request.sample_id, "", error=f"no response in {self.path.name}"))
            else:
                out.append(Response(p.request.sample_id, text, finish_reason="replay"))
        return out
