"""``dummy:first`` / ``dummy:random[:SEED]`` — deterministic baselines for tests and chance lines.

``first`` answers the first option's label; ``random`` a uniformly drawn label, seeded by
(seed, sample id) so the answer does not depend on batch order. Tasks without options get a
fixed sentence.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Sequence

from vpbench.errors import ConfigError
from vpbench.models.base import BackendBase, Prepared
from vpbench.types import Response

NO_OPTION_TEXT = "A vehicle moves along the road."


def option_label(option: str, index: int) -> str:
    """'B. a cat' → 'B'; '(C) dog' → 'C'; an unlabelled option (VideoMMMU stores bare texts) gets
    the letter of its position, as the benchmark's prompt shows it."""
    s = option.strip().lstrip("(")
    for sep in (".", ")", ":"):
        head, found, _ = s.partition(sep)
        if found and 0 < len(head.strip()) <= 2 and head.strip().isalpha():
            return head.strip()
    return chr(ord("A") + index)


class DummyBackend(BackendBase):
    name = "dummy"

    def __init__(self, kind: str, seed: int = 0, batch_size: int = 64, needs_frames: bool = False) -> None:
        if kind not in ("first", "random"):
            raise ConfigError(f"dummy backend kind must be 'first' or 'random', got {kind!r}")
        self.kind = kind
        self.seed = seed
        self.batch_size = batch_size
        self.needs_frames = needs_frames

    def fingerprint(self) -> str:
        return f"dummy-{self.kind}-{self.seed}"

    def describe(self) -> dict[str, Any]:
        return {"backend": "dummy", "kind": self.kind, "seed": self.seed}

    def _answer(self, sample_id: str, options: tuple[str, ...]) -> str:
        if not options:
            return NO_OPTION_TEXT
        if self.kind == "first":
            return option_label(options[0], 0)
        digest = hashlib.sha256(f"{self.seed}\0{sample_id}".encode()).digest()
        i = random.Random(digest).randrange(len(options))
        return option_label(options[i], i)

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        return [Response(p.request.sample_id, self._answer(p.request.sample_id, p.request.options),
                         finish_reason="stop") for p in batch]
