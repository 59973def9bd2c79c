"""Folders of frame images read as videos.

MVBench Episodic Reasoning (and other benchmarks) ship clips as 3-fps ``00001.jpg`` … folders. Such a
folder is read as a video whose frame ``i`` is the i-th image (``.jpg``/``.jpeg``/``.png``, natural
order) at a caller-given ``frames_fps``: the same sampling plan applies with
``total_frames = number of images`` and ``video_fps = frames_fps``, timestamps are
``index / frames_fps`` and only the sampled images are read.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.types import Frames
from vpbench.video.decode import VideoInfo
from vpbench.video.sampler import SamplingError, plan_sampling

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
_FIX_FOLDER = "re-extract or re-download the frame folder"
_FIX_FPS = (
    "give the VideoRef its frames_fps (the rate the frames were extracted at, e.g. 3.0 for MVBench "
    "episodic_reasoning) in the task loader"
)


class FrameImageError(ValueError):
    """One frame image cannot be used; ``str(exc)`` is a short problem naming the file."""


def _folder_media(path: Path | str, problem: str, fix: str) -> MissingMedia:
    return MissingMedia(f"frame folder {path}: {problem}. Fix: {fix}")


def _natural_key(name: str) -> tuple[list[int | str], str]:
    """Natural order ("2.jpg" < "10.jpg"): digit runs compare as numbers, the rest case-folded."""
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


def list_frame_files(folder: Path | str) -> list[Path]:
    """Image files of ``folder`` (``.jpg``/``.jpeg``/``.png``, any case, hidden files skipped) in
    natural order; other files are ignored. Empty list when there are none."""
    folder = Path(folder)
    names = [
        e.name for e in os.scandir(folder)
        if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
    ]
    return [folder / n for n in sorted(names, key=_natural_key)]


def frame_files(folder: Path | str) -> list[Path]:
    """:func:`list_frame_files`, raising MissingMedia for a missing folder or one without images."""
    folder = Path(folder)
    if not folder.exists():
        raise _folder_media(folder, "missing folder", "check the task's data root / video path, or download the frames")
    if not folder.is_dir():
        raise _folder_media(folder, "not a folder of frame images (it is a file)",
                            "point the sample at the frame folder, or drop frames_fps for a video file")
    files = list_frame_files(folder)
    if not files:
        raise _folder_media(folder, "folder has no frame images (.jpg/.jpeg/.png)", _FIX_FOLDER)
    return files


def image_size(file: Path) -> tuple[int, int]:
    """(width, height) from the image header; FrameImageError when it cannot be read."""
    from PIL import Image

    try:
        if file.stat().st_size == 0:
            raise FrameImageError(f"unreadable image {file.name}: empty file (0 bytes)")
        with Image.open(file) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, FrameImageError):
            raise
        raise FrameImageError(f"unreadable image {file.name}: {exc}") from exc


def read_rgb(file: Path, size: tuple[int, int], resize: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``file`` to RGB uint8 [H, W, 3] (resized bicubic to ``resize`` = (w, h) when given).

    FrameImageError when it does not decode or its (w, h) differs from ``size`` (the first frame's).
    """
    from PIL import Image

    try:
        with Image.open(file) as im:
            if im.size != size:
                raise FrameImageError(
                    f"frame sizes differ: {file.name} is {im.size[0]}x{im.size[1]}, the first frame {size[0]}x{size[1]}")
            rgb = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, FrameImageError):
            raise
        raise FrameImageError(f"unreadable image {file.name}: {exc}") from exc
    if resize is not None:
        rgb = rgb.resize(resize, Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)


def _checked(folder: Path, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except FrameImageError as exc:
        raise _folder_media(folder, str(exc), _FIX_FOLDER) from exc


def check_frames_fps(folder: Path | str, frames_fps: float | None) -> float:
    """``frames_fps`` as a float; MissingMedia when it is None, non-finite or <= 0."""
    if frames_fps is None:
        raise _folder_media(folder, "a folder of frame images has no frame rate (frames_fps is None)", _FIX_FPS)
    if not (math.isfinite(frames_fps) and frames_fps > 0):
        raise _folder_media(folder, f"frames_fps must be a positive number, got {frames_fps!r}", _FIX_FPS)
    return float(frames_fps)


def probe_folder(folder: Path | str, frames_fps: float | None) -> VideoInfo:
    """VideoInfo of a frame folder: image count, ``frames_fps``, count/fps seconds, first image size."""
    folder = Path(folder)
    files = frame_files(folder)
    fps = check_frames_fps(folder, frames_fps)
    width, height = _checked(folder, image_size, files[0])
    return VideoInfo(n_frames=len(files), fps=fps, duration_s=len(files) / fps, width=width, height=height)


def decode_frame_folder(
    folder: Path | str,
    protocol: Protocol,
    frames_fps: float | None,
    start_s: float | None = None,
    end_s: float | None = None,
) -> Frames:
    """Sample a folder of frame images as the video it was cut from (see the module doc).

    Returns ``Frames`` (uint8 [T, H, W, 3] at the ``smart_resize`` size of the first image,
    timestamps ``index / frames_fps``, ``source_fps = frames_fps``). Raises MissingMedia for a
    missing folder, no images, no/invalid ``frames_fps``, an unreadable or differently sized
    sampled image, or a clip too short for the protocol.
    """
    folder = Path(folder)
    fps = check_frames_fps(folder, frames_fps)
    files = frame_files(folder)
    width, height = _checked(folder, image_size, files[0])
    try:
        plan = plan_sampling(protocol, len(files), fps, height, width, start_s, end_s)
    except SamplingError as exc:
        raise _folder_media(folder, f"too short: {exc}", "drop the sample or fix its clip times") from exc
    size = (plan.resized_w, plan.resized_h)
    got = {i: _checked(folder, read_rgb, files[i], (width, height), size) for i in dict.fromkeys(plan.indices)}
    return Frames(
        array=np.stack([got[i] for i in plan.indices]),
        timestamps_s=plan.timestamps_s,
        source_fps=fps,
        sampler_fingerprint=protocol.sampler_fingerprint(),
        sample_fps=plan.sample_fps,
    )
