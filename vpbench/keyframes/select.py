"""Key-frame selection: local maxima of a frame-score sequence (RECIPE §1.3, paper eq. 2).

Rule (paper-literal, RECIPE §1.3): frame ``t`` is a key frame iff ``s[t] > s[t-1]`` and ``s[t] >= s[t+1]``.
Equivalently the sequence is padded with ``-inf`` on both sides, so

* a plateau counts once, at its **first** frame (``[1, 3, 3, 1]`` → ``[1]``);
* at the edges the one existing neighbour decides: frame 0 is key iff ``s[0] >= s[1]`` and frame ``T-1`` is
  key iff ``s[T-1] > s[T-2]``. A constant sequence therefore has one key frame, frame 0; a decreasing one has
  ``[0]`` and an increasing one ``[T-1]``;
* a "shoulder" (a rise onto a plateau that later rises again, ``[1, 3, 3, 5]``) marks frame 1: the rule is
  literal. Its prominence is 0, so any ``min_prominence > 0`` drops it;
* ``T == 1``: no neighbour to exceed, so **no** key frame (degrading frame 0 would be a no-op anyway);
  ``T == 0``: no key frame.

Prominence (optional filter, default 0 = paper-literal): scipy's definition (``scipy.signal.peak_prominences``
with no window): from the peak walk left while samples are ``<=`` the peak, take the minimum met (the left base);
the same to the right; prominence = ``s[t] - max(left_base, right_base)``. Difference to scipy, for edge key
frames only: scipy's base on the side that has no samples is the peak itself (prominence 0); here that side is
ignored, so an edge maximum's prominence is measured against the one existing side. For ``T == 1`` there is
nothing to measure (no key frames anyway).

``max_key_ratio`` keeps the ``floor(max_key_ratio * T + 1e-9)`` highest-scoring maxima (the epsilon absorbs
float error, e.g. ``0.29 * 100``). Ties in score are broken by the earlier frame. The result is always sorted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vpbench.errors import ConfigError, DataError


@dataclass(frozen=True)
class SelectConfig:
    """Key-frame selection options (RECIPE §1.3 defaults: paper-literal)."""

    min_prominence: float = 0.0
    max_key_ratio: float = 1.0

    def __post_init__(self) -> None:
        _check_options(self.min_prominence, self.max_key_ratio)


def _check_options(min_prominence: float, max_key_ratio: float) -> None:
    if not (isinstance(min_prominence, (int, float)) and math.isfinite(min_prominence) and min_prominence >= 0):
        raise ConfigError(f"min_prominence must be a finite number >= 0, got {min_prominence!r}")
    if not (isinstance(max_key_ratio, (int, float)) and 0.0 <= max_key_ratio <= 1.0):
        raise ConfigError(f"max_key_ratio must be in [0, 1], got {max_key_ratio!r}")


def _as_scores(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"frame scores must be a 1-D sequence [T], got shape {arr.shape}; pass one score per frame")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise DataError(f"frame scores contain NaN/inf at frames {bad[:10]}; fix the scorer output")
    return arr


def local_maxima_candidates(s: np.ndarray) -> list[int]:
    """All frames satisfying the -inf-padded rule ``s[t] > s[t-1] and s[t] >= s[t+1]`` (T < 2 → [])."""
    n = len(s)
    if n < 2:
        return []
    padded = np.concatenate(([-np.inf], s, [-np.inf]))
    mid = padded[1:-1]
    is_key = (mid > padded[:-2]) & (mid >= padded[2:])
    return np.flatnonzero(is_key).tolist()


def prominence(s: np.ndarray, t: int) -> float:
    """Prominence of frame ``t`` (scipy's walk-over-equal-values definition; a missing edge side is ignored)."""
    n = len(s)
    peak = s[t]
    bases = []
    if t > 0:
        i, low = t - 1, peak
        while i >= 0 and s[i] <= peak:
            low = min(low, s[i])
            i -= 1
        bases.append(low)
    if t < n - 1:
        i, low = t + 1, peak
        while i < n and s[i] <= peak:
            low = min(low, s[i])
            i += 1
        bases.append(low)
    if not bases:
        return math.inf
    return float(peak - max(bases))


def local_maxima(
    scores: Sequence[float] | np.ndarray, *, min_prominence: float = 0.0, max_key_ratio: float = 1.0
) -> list[int]:
    """Key-frame indices (sorted) of a score sequence ``scores`` [T]; see the module docstring for the rules.

    Raises DataError for a non-1-D or non-finite input and ConfigError for bad options.
    """
    _check_options(min_prominence, max_key_ratio)
    s = _as_scores(scores)
    keys = local_maxima_candidates(s)
    if min_prominence > 0:
        keys = [t for t in keys if prominence(s, t) >= min_prominence]
    budget = int(math.floor(max_key_ratio * len(s) + 1e-9))
    if len(keys) > budget:
        ranked = sorted(keys, key=lambda t: (-s[t], t))
        keys = sorted(ranked[:budget])
    return keys


def select_keys(scores: Sequence[float] | np.ndarray, cfg: SelectConfig = SelectConfig()) -> list[int]:
    """``local_maxima`` driven by a ``SelectConfig``."""
    return local_maxima(scores, min_prominence=cfg.min_prominence, max_key_ratio=cfg.max_key_ratio)
