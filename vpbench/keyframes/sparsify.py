"""Key-event sparsification for transient-event clips (RECIPE §1.5, paper §3.4).

The paper: MM-AU clips have key events in >25% of their frames, so "denser temporal sampling (e.g. 8 fps)" is
applied *only to non-key segments* to bring the key-event ratio down to 5%. Our exact reading:

* The output clip is a list of source frame indices (a *plan*), meant to be written/played at a constant
  rate; ``SparsifyPlan.out_fps`` is the source fps, so key segments play in real time. Any uniform sampler
  applied later (the model's fps sampler) then preserves the key ratio in expectation.
* **Key segments** (half-open source frame ranges ``[start, end)``; overlapping or touching ones are merged)
  keep every source frame, once ("source rate").
* **Non-key segments** (the gaps between key segments) are resampled at ``nonkey_fps`` (default 8) frames per
  second of source time: a segment of ``L`` frames gets ``max(1, ceil(L * nonkey_fps / src_fps))`` frames, at
  source indices ``start + floor(j * L / n)``, ``j = 0..n-1``. When that rate exceeds the source fps the same
  source frame appears several times ("denser" than the source: frames repeat, nothing is interpolated).
* Key ratio = key frames / all frames; ``ratio_before`` is over the source clip, ``ratio_after`` over the plan.
* If 8 fps alone leaves the ratio above ``target_ratio`` (default 0.05) and ``adapt_nonkey_fps`` is true
  (default), the non-key frame count is raised to the smallest ``N`` with ``n_key / (n_key + N) <= target``,
  i.e. ``N = ceil(n_key * (1 - target) / target)``, optionally capped by ``max_nonkey_fps``. ``N`` is split
  over the non-key segments as one frame each plus the rest proportionally to segment length (largest
  remainder, earlier segment first on ties). Without adaption, or when capped, or when the clip has no
  non-key frames, the report says ``met_target = False``; nothing is silently dropped.

Example: 300 source frames at 30 fps with key segment ``[100, 175)`` (75 frames, ratio 0.25). At 8 fps the
non-key gaps (100 + 125 frames) give 27 + 34 = 61 frames → ratio 75/136 = 0.55, so adaption raises the non-key
count to ``ceil(75 * 0.95 / 0.05) = 1425`` (190 fps effective, each non-key frame repeated ~6x) → 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vpbench.errors import ConfigError, DataError

_EPS = 1e-9


@dataclass(frozen=True)
class SparsifyConfig:
    """Sparsification options (RECIPE §1.5 defaults)."""

    nonkey_fps: float = 8.0
    target_ratio: float = 0.05
    adapt_nonkey_fps: bool = True
    max_nonkey_fps: float | None = None

    def __post_init__(self) -> None:
        if not self.nonkey_fps > 0:
            raise ConfigError(f"sparsify.nonkey_fps must be > 0, got {self.nonkey_fps!r}")
        if not 0 < self.target_ratio <= 1:
            raise ConfigError(f"sparsify.target_ratio must be in (0, 1], got {self.target_ratio!r}")
        if self.max_nonkey_fps is not None and self.max_nonkey_fps < self.nonkey_fps:
            raise ConfigError(
                f"sparsify.max_nonkey_fps ({self.max_nonkey_fps}) must be >= nonkey_fps ({self.nonkey_fps}) or null"
            )


@dataclass(frozen=True)
class SparsifyReport:
    """Per-clip key ratios before/after and how the non-key segments were sampled."""

    clip_id: str
    src_fps: float
    n_src_frames: int
    n_key_src: int
    ratio_before: float
    n_out_frames: int
    n_key_out: int
    ratio_after: float
    nonkey_fps_effective: float
    n_repeated: int
    target_ratio: float
    met_target: bool


@dataclass(frozen=True)
class SparsifyPlan:
    """``frame_indices[i]``: source frame of output frame ``i`` (non-decreasing); ``is_key[i]``: in a key
    segment; ``key_segments_out``: key segments in output coordinates (half-open)."""

    frame_indices: tuple[int, ...]
    is_key: tuple[bool, ...]
    key_segments_out: tuple[tuple[int, int], ...]
    out_fps: float
    report: SparsifyReport


def merge_segments(segments: Sequence[Sequence[int]], n_frames: int, clip_id: str = "") -> list[tuple[int, int]]:
    """Validate half-open ``[start, end)`` frame ranges and merge overlapping/touching ones (sorted)."""
    where = f" (clip {clip_id!r})" if clip_id else ""
    out: list[tuple[int, int]] = []
    for seg in segments:
        if len(seg) != 2:
            raise DataError(f"key segment {seg!r}{where} must be a (start, end) pair of frame indices")
        a, b = seg
        if not (isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer))):
            raise DataError(f"key segment {seg!r}{where} must hold integer frame indices")
        if not 0 <= a < b <= n_frames:
            raise DataError(
                f"key segment [{a}, {b}){where} is empty or outside [0, {n_frames}); "
                "segments are half-open frame ranges of the source clip"
            )
        out.append((int(a), int(b)))
    out.sort()
    merged: list[tuple[int, int]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _gaps(keys: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    gaps, cur = [], 0
    for a, b in keys:
        if a > cur:
            gaps.append((cur, a))
        cur = b
    if cur < n:
        gaps.append((cur, n))
    return gaps


def _count_at(length: int, fps: float, src_fps: float) -> int:
    return max(1, math.ceil(length * fps / src_fps - _EPS))


def _split(total: int, lengths: list[int]) -> list[int]:
    """One frame per segment, the rest proportional to length by largest remainder (earlier first on ties)."""
    rest = total - len(lengths)
    whole = sum(lengths)
    shares = [rest * L / whole for L in lengths]
    counts = [math.floor(x) for x in shares]
    left = rest - sum(counts)
    order = sorted(range(len(lengths)), key=lambda i: (-(shares[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return [c + 1 for c in counts]


def sparsify_plan(
    n_frames: int,
    src_fps: float,
    key_segments: Sequence[Sequence[int]],
    cfg: SparsifyConfig = SparsifyConfig(),
    clip_id: str = "",
) -> SparsifyPlan:
    """Resampling plan for a clip of ``n_frames`` source frames at ``src_fps`` with the given key segments."""
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise DataError(f"clip {clip_id!r}: n_frames must be a positive integer, got {n_frames!r}")
    if not (isinstance(src_fps, (int, float)) and src_fps > 0 and math.isfinite(src_fps)):
        raise DataError(f"clip {clip_id!r}: src_fps must be a positive number, got {src_fps!r}")
    keys = merge_segments(key_segments, int(n_frames), clip_id)
    gaps = _gaps(keys, int(n_frames))
    n_key = sum(b - a for a, b in keys)
    lengths = [b - a for a, b in gaps]
    counts = [_count_at(L, cfg.nonkey_fps, src_fps) for L in lengths]
    p = cfg.target_ratio
    if cfg.adapt_nonkey_fps and gaps and n_key > 0:
        need = math.ceil(n_key * (1 - p) / p - _EPS)
        if cfg.max_nonkey_fps is not None:
            need = min(need, sum(_count_at(L, cfg.max_nonkey_fps, src_fps) for L in lengths))
        if need > sum(counts):
            counts = _split(need, lengths)

    segs = sorted([(a, b, True, b - a) for a, b in keys] + [(a, b, False, c) for (a, b), c in zip(gaps, counts)])
    idx: list[int] = []
    flags: list[bool] = []
    key_out: list[tuple[int, int]] = []
    for a, b, is_key, n in segs:
        L = b - a
        start = len(idx)
        idx.extend(a + (j * L) // n for j in range(n))
        flags.extend([is_key] * n)
        if is_key:
            key_out.append((start, len(idx)))
    n_out = len(idx)
    n_nonkey_out = n_out - n_key
    nonkey_src = n_frames - n_key
    ratio_after = n_key / n_out
    report = SparsifyReport(
        clip_id=clip_id,
        src_fps=float(src_fps),
        n_src_frames=int(n_frames),
        n_key_src=n_key,
        ratio_before=n_key / n_frames,
        n_out_frames=n_out,
        n_key_out=n_key,
        ratio_after=ratio_after,
        nonkey_fps_effective=(n_nonkey_out * src_fps / nonkey_src) if nonkey_src else 0.0,
        n_repeated=sum(1 for i in range(1, n_out) if idx[i] == idx[i - 1]),
        target_ratio=p,
        met_target=ratio_after <= p + _EPS,
    )
    return SparsifyPlan(
        frame_indices=tuple(idx),
        is_key=tuple(flags),
        key_segments_out=tuple(key_out),
        out_fps=float(src_fps),
        report=report,
    )


def apply_plan(frames: np.ndarray, plan: SparsifyPlan) -> np.ndarray:
    """Gather the plan's frames from a decoded source clip ``frames`` [T_src, H, W, C] → [T_out, H, W, C]."""
    arr = np.asarray(frames)
    if arr.ndim < 1 or arr.shape[0] != plan.report.n_src_frames:
        raise DataError(
            f"clip {plan.report.clip_id!r}: plan was made for {plan.report.n_src_frames} frames, "
            f"got {arr.shape[0] if arr.ndim else 0}; re-plan with the decoded frame count"
        )
    return arr[np.asarray(plan.frame_indices, dtype=np.int64)]
