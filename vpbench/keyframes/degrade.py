"""Key-information-absent video (RECIPE §1.4) and the end-to-end ``key_absent`` function (RECIPE §1.1-1.4).

Degradation: ``V'[t] = V[t-1]`` for every key frame ``t > 0`` and ``V'[t] = V[t]`` otherwise (``V'[0] = V[0]``
even when frame 0 is key). The predecessor is always taken from the **original** clip, so two consecutive key
frames ``t, t+1`` become ``V[t-1], V[t]`` (not ``V[t-1], V[t-1]``). Frames are the frames *as the model samples
them* (same sampler and pixel budget), so the degraded clip has exactly the same shape and token count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from vpbench.errors import DataError
from vpbench.keyframes.select import SelectConfig, select_keys

if TYPE_CHECKING:
    from vpbench.keyframes.scorers import FrameScorer


def _key_positions(key: Sequence[int], n: int) -> np.ndarray:
    idx = np.asarray(list(key), dtype=np.int64)
    if idx.ndim != 1:
        raise DataError(f"key frame indices must be a flat sequence of ints, got shape {idx.shape}")
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise DataError(f"key frame indices {bad.tolist()[:10]} are outside [0, {n}) for a clip of {n} frames")
    return idx


def degrade(frames: np.ndarray, key: Sequence[int]) -> np.ndarray:
    """Return a new array ``V'`` [T, H, W, 3] (same shape and dtype as ``frames``) with key frames replaced by
    their original predecessor. ``frames`` is not modified. Duplicate key indices are harmless."""
    arr = np.asarray(frames)
    if arr.ndim != 4:
        raise DataError(f"frames must be [T, H, W, C], got shape {arr.shape}")
    n = arr.shape[0]
    src = np.arange(n)
    pos = _key_positions(key, n)
    pos = pos[pos > 0]
    src[pos] = pos - 1
    return arr[src]


@dataclass(frozen=True, eq=False)
class KeyAbsentResult:
    """Output of ``key_absent``: the degraded clip [T, H, W, 3], key frame indices (sorted) and scores [T]."""

    degraded: np.ndarray
    key_idx: tuple[int, ...]
    scores: np.ndarray


def key_absent(
    frames: np.ndarray,
    keywords: Sequence[str],
    scorer: "FrameScorer",
    select_cfg: SelectConfig = SelectConfig(),
) -> KeyAbsentResult:
    """Score frames against keywords, pick key frames (local maxima) and degrade them.

    ``frames``: uint8 [T, H, W, 3] as the model samples them. ``scorer``: any ``FrameScorer``.
    """
    scores = np.asarray(scorer.score(frames, list(keywords)), dtype=np.float64)
    if scores.shape != (np.asarray(frames).shape[0],):
        raise DataError(
            f"scorer {getattr(scorer, 'name', type(scorer).__name__)!r} returned scores of shape {scores.shape} "
            f"for {np.asarray(frames).shape[0]} frames; a scorer must return one score per frame"
        )
    keys = select_keys(scores, select_cfg)
    return KeyAbsentResult(degraded=degrade(frames, keys), key_idx=tuple(keys), scores=scores)
