"""Pair two sides of one task sample by sample, after checking they measure the same thing.

Two runs are comparable on a task when the task version, the protocol fingerprint (frames, pixels,
prompt, decoding), the parser tag and the sample-set hash agree, and every shared sample has the
same reference answer. The user may name differences to accept (``ALLOWABLE``); a differing sample
set is then compared on the samples both sides scored, and coverage says how much of the baseline
that is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from vpbench.config import suggest
from vpbench.errors import ConfigError
from vpbench.gate.sides import Row, TaskSide

ALLOWABLE = ("task_version", "protocol", "parser", "sample_set", "gap_options", "stack")


def check_allow(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for n in names:
        if n not in ALLOWABLE:
            raise ConfigError(f"cannot allow '{n}' to differ{suggest(n, ALLOWABLE)}; "
                              f"allowable differences: {', '.join(ALLOWABLE)}")
    return tuple(names)


def stack_difference(base: Mapping[str, str], cand: Mapping[str, str]) -> dict[str, str]:
    """{"stack": reason} when the transformers major versions differ (README: mRoPE positions differ
    between 4.x and 5.x), else {} (minor versions and a side that did not record it pass)."""
    a, b = base.get("transformers"), cand.get("transformers")
    if a and b and a.split(".")[0] != b.split(".")[0]:
        return {"stack": f"transformers major version differs: baseline {a}, candidate {b} "
                         f"(Qwen2.5-VL scores differ between stacks)"}
    return {}


def differences(base: TaskSide, cand: TaskSide) -> dict[str, str]:
    """What differs between two sides of a task: {allowable name: human reason}."""
    out: dict[str, str] = {}
    pairs = (("task_version", base.version, cand.version),
             ("protocol", base.protocol_fingerprint, cand.protocol_fingerprint),
             ("parser", base.parser, cand.parser),
             ("sample_set", base.sample_set_hash, cand.sample_set_hash))
    for name, a, b in pairs:
        if a != b:
            out[name] = f"{name.replace('_', ' ')} differs: baseline {a}, candidate {b}"
    if base.key_absent and cand.key_absent and base.gap_options != cand.gap_options:
        out["gap_options"] = ("perception-gap options differ: baseline "
                              f"{base.gap_options}, candidate {cand.gap_options}")
    return out


@dataclass(frozen=True)
class Aligned:
    """Scorable samples present on both sides, in the baseline's order.

    ``base`` / ``cand`` [N] rows; ``clusters`` [N] (the video; a sample without one is its own).
    ``n_baseline`` counts the baseline's scorable samples, so ``coverage = N / n_baseline``.
    """

    task: str
    base: tuple[Row, ...]
    cand: tuple[Row, ...]
    clusters: tuple[str, ...]
    n_baseline: int
    answer_mismatch: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.base)

    @property
    def coverage(self) -> float:
        return self.n / self.n_baseline if self.n_baseline else 0.0

    def scores(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample ``key`` scores [N] of baseline and candidate (KeyError names a lacking sample)."""
        a = np.empty(self.n)
        b = np.empty(self.n)
        for i, (x, y) in enumerate(zip(self.base, self.cand)):
            for side, row, arr in (("baseline", x, a), ("candidate", y, b)):
                if key not in row.scores:
                    raise KeyError(f"{side} sample '{row.sample_id}' has no score '{key}' "
                                   f"(it has: {', '.join(sorted(row.scores)) or 'none'})")
                arr[i] = row.scores[key]
        return a, b


def align(base: TaskSide, cand: TaskSide) -> Aligned:
    """Pair scorable baseline samples with the candidate's samples of the same id."""
    by_id = {r.sample_id: r for r in cand.rows}
    scorable = [r for r in base.rows if r.answer is not None]
    pairs = [(r, by_id[r.sample_id]) for r in scorable if r.sample_id in by_id]
    mismatch = tuple(a.sample_id for a, b in pairs if a.answer != b.answer)
    pairs = [(a, b) for a, b in pairs if a.answer == b.answer]
    return Aligned(task=base.name, base=tuple(a for a, _ in pairs), cand=tuple(b for _, b in pairs),
                   clusters=tuple(a.cluster or f"\0sample:{a.sample_id}" for a, _ in pairs),
                   n_baseline=len(scorable), answer_mismatch=mismatch)


def align_gap(base: TaskSide, cand: TaskSide) -> tuple[Aligned, Aligned] | None:
    """Full-pass and key-absent-pass alignments over the samples scored in all four passes (same
    order), or None when a side has no key-absent pass."""
    if not base.key_absent or not cand.key_absent:
        return None
    ka_b = {r.sample_id: r for r in base.key_absent}
    ka_c = {r.sample_id: r for r in cand.key_absent}
    full = align(base, cand)
    idx = [i for i, r in enumerate(full.base) if r.sample_id in ka_b and r.sample_id in ka_c]
    rows_b = tuple(full.base[i] for i in idx)
    rows_c = tuple(full.cand[i] for i in idx)
    clusters = tuple(full.clusters[i] for i in idx)
    full_g = Aligned(base.name, rows_b, rows_c, clusters, full.n_baseline)
    absent = Aligned(base.name, tuple(ka_b[r.sample_id] for r in rows_b), tuple(ka_c[r.sample_id] for r in rows_c),
                     clusters, full.n_baseline)
    return full_g, absent
