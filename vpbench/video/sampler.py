"""Qwen2.5-VL frame sampling rules as pure functions (no I/O, no torch).

Reproduces ``qwen_vl_utils.vision_process`` 0.0.10 (``smart_nframes``, ``smart_resize``, the
per-frame pixel budget and ``torch.linspace(...).round()`` frame indices) plus the clip range
rule of 0.0.14 (``calculate_video_frame_range``), driven by a :class:`vpbench.protocol.Protocol`
instead of module constants and env vars:

* ``protocol.max_pixels`` plays the role of the module constant ``VIDEO_MAX_PIXELS`` (the value
  forks such as Video-R1 edit), so :func:`video_max_pixels` equals qwen-vl-utils' budget when the
  element dict carries no ``max_pixels`` of its own;
* ``protocol.frame_factor`` replaces ``FRAME_FACTOR`` (2);
* ``protocol.total_pixels`` replaces ``VIDEO_TOTAL_PIXELS``.

``frame_indices`` matches ``torch.linspace(start, end, n).round()`` bit for bit: torch computes
linspace in float32 as ``start + step*i`` for the first half and ``end - step*(n-1-i)`` for the
second half, each a fused multiply-add (one rounding) on x86-64 AVX2/AVX512 and aarch64 builds,
then rounds half to even. A float64 ``linspace`` would differ on ~1 in 150 (start, end, n)
triples (e.g. ``linspace(0, 47, 23)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from vpbench.errors import VpbenchError
from vpbench.protocol import Protocol

IMAGE_FACTOR = 28
MAX_RATIO = 200


class SamplingError(VpbenchError, ValueError):
    """A clip cannot be sampled under the protocol (too short, bad range, extreme aspect)."""


# -- integer rounding helpers (Python's round: half to even, as qwen-vl-utils) -------------------
def round_by_factor(number: float, factor: int) -> int:
    """Closest multiple of ``factor`` to ``number`` (ties to the even quotient, like ``round``)."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    """Smallest multiple of ``factor`` that is >= ``number``."""
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    """Largest multiple of ``factor`` that is <= ``number``."""
    return math.floor(number / factor) * factor


# -- frame count ----------------------------------------------------------------------------------
def smart_nframes(protocol: Protocol, total_frames: int, video_fps: float) -> int:
    """Number of frames to sample from a clip of ``total_frames`` frames at ``video_fps``.

    ``protocol.nframes`` set: ``round_by_factor(nframes, factor)``. Otherwise
    ``total/video_fps*fps`` clamped to ``[ceil(min_frames), floor(min(max_frames, total))]`` and
    to ``total``, then floored to a multiple of ``factor``. Raises :class:`SamplingError` unless
    ``factor <= n <= total_frames``.
    """
    factor = protocol.frame_factor
    if protocol.nframes is not None:
        nframes: float = round_by_factor(protocol.nframes, factor)
    else:
        if video_fps <= 0:
            raise SamplingError(f"video fps must be > 0 to sample by fps, got {video_fps}")
        assert protocol.fps is not None
        min_frames = ceil_by_factor(protocol.min_frames, factor)
        max_frames = floor_by_factor(min(protocol.max_frames, total_frames), factor)
        nframes = total_frames / video_fps * protocol.fps
        nframes = min(min(max(nframes, min_frames), max_frames), total_frames)
        nframes = floor_by_factor(nframes, factor)
    if not factor <= nframes <= total_frames:
        raise SamplingError(
            f"clip too short: the protocol needs {int(nframes)} frames (a multiple of {factor}, at "
            f"least {factor}) but the clip has {total_frames} frames; use a longer clip or lower "
            "protocol.nframes / protocol.min_frames"
        )
    return int(nframes)


def frame_range(
    total_frames: int, video_fps: float, start_s: float | None = None, end_s: float | None = None
) -> tuple[int, int, int]:
    """Clip [start_s, end_s] (seconds) to ``(start_frame, end_frame, count)``, inclusive.

    As qwen-vl-utils 0.0.14 ``calculate_video_frame_range``: times are clamped to
    [0, total/fps]; start frame = ceil(start*fps), end frame = min(floor(end*fps), total-1).
    """
    if video_fps <= 0:
        raise SamplingError(f"video fps must be > 0, got {video_fps}")
    if total_frames <= 0:
        raise SamplingError(f"video has no frames (total_frames={total_frames})")
    if start_s is None and end_s is None:
        return 0, total_frames - 1, total_frames
    max_duration = total_frames / video_fps
    start_frame = 0
    end_frame = total_frames - 1
    if start_s is not None:
        start_frame = math.ceil(max(0.0, min(start_s, max_duration)) * video_fps)
    if end_s is not None:
        end_frame = min(math.floor(max(0.0, min(end_s, max_duration)) * video_fps), total_frames - 1)
    if start_frame >= end_frame:
        raise SamplingError(
            f"invalid clip range: start {start_s}s -> frame {start_frame} is not before end {end_s}s "
            f"-> frame {end_frame} (video: {max_duration:.2f}s, {total_frames} frames @ "
            f"{video_fps:g} fps); fix the sample's start/end times"
        )
    return start_frame, end_frame, end_frame - start_frame + 1


# -- frame indices ------------------------------------------------------------------------------
def _to_f32(value: Fraction) -> np.float32:
    """Round an exact rational to the nearest float32 (ties to even), with one rounding."""
    as_f64 = float(value)  # correctly rounded to float64
    out = np.float32(as_f64)
    # Double rounding (f64 then f32) is only wrong when the f64 lands exactly on an f32 midpoint.
    lo, hi = sorted((out, np.nextafter(out, np.float32(math.copysign(math.inf, as_f64 - float(out))))))
    mid = (Fraction(float(lo)) + Fraction(float(hi))) / 2
    if lo != hi and Fraction(as_f64) == mid and value != mid:
        return lo if value < mid else hi
    return out


def frame_indices(n: int, start_frame: int, end_frame: int) -> list[int]:
    """``torch.linspace(start_frame, end_frame, n).round().long().tolist()``, exactly (see module doc)."""
    if n <= 0:
        raise SamplingError(f"need at least one frame, got n={n}")
    start = np.float32(start_frame)
    end = np.float32(end_frame)
    if n == 1:
        return [int(np.rint(start))]
    step = np.float32(np.float32(end - start) / np.float32(n - 1))
    f_start, f_end, f_step = Fraction(float(start)), Fraction(float(end)), Fraction(float(step))
    halfway = n // 2
    out = []
    for i in range(n):
        exact = f_start + f_step * i if i < halfway else f_end - f_step * (n - 1 - i)
        out.append(int(np.rint(_to_f32(exact))))
    return out


# -- spatial size ----------------------------------------------------------------------------------
def smart_resize(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: float = 4 * 28 * 28,
    max_pixels: float = 16384 * 28 * 28,
) -> tuple[int, int]:
    """Qwen2-VL ``smart_resize``: sides multiples of ``factor``, area in [min, max], aspect kept.

    Raises :class:`SamplingError` when the aspect ratio exceeds ``MAX_RATIO`` (200).
    """
    if height <= 0 or width <= 0:
        raise SamplingError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise SamplingError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, got "
            f"{max(height, width) / min(height, width)} ({height}x{width})"
        )
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def video_max_pixels(protocol: Protocol, nframes: int) -> float:
    """Per-frame pixel cap: ``max(min(max_pixels, total_pixels/nframes*factor), int(1.05*min_pixels))``."""
    return max(
        min(protocol.max_pixels, protocol.total_pixels / nframes * protocol.frame_factor),
        int(protocol.min_pixels * 1.05),
    )


# -- the whole plan ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplingPlan:
    """Which source frames to take and the size to resize them to.

    ``indices``: 0-based source frame indices (presentation order), length T, non-decreasing.
    ``timestamps_s``: nominal times ``index / video_fps`` [T] (the decoder reports actual pts).
    ``sample_fps``: ``T / clip_frames * video_fps`` (what qwen-vl-utils passes as ``fps``).
    """

    indices: tuple[int, ...]
    timestamps_s: tuple[float, ...]
    resized_h: int
    resized_w: int
    sample_fps: float

    @property
    def n(self) -> int:
        return len(self.indices)


def plan_sampling(
    protocol: Protocol,
    total_frames: int,
    video_fps: float,
    height: int,
    width: int,
    start_s: float | None = None,
    end_s: float | None = None,
) -> SamplingPlan:
    """Full qwen-vl-utils plan for a video of ``total_frames`` frames of ``height x width``."""
    start_frame, end_frame, count = frame_range(total_frames, video_fps, start_s, end_s)
    n = smart_nframes(protocol, count, video_fps)
    idx = frame_indices(n, start_frame, end_frame)
    h, w = smart_resize(
        height,
        width,
        factor=IMAGE_FACTOR,
        min_pixels=protocol.min_pixels,
        max_pixels=video_max_pixels(protocol, n),
    )
    return SamplingPlan(
        indices=tuple(idx),
        timestamps_s=tuple(i / video_fps for i in idx),
        resized_h=h,
        resized_w=w,
        sample_fps=n / max(count, 1e-6) * video_fps,
    )
