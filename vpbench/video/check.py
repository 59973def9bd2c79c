"""Cheap video preflight: is each video present, non-empty, decodable and long enough?

Used by the engine before loading a model, over thousands of videos, so each check costs one
container open (header probe) plus, with ``decode=True``, decoding the first and the last frame
the clip needs: a seek to the keyframe before each, decoding forward to it. Truncated files whose
header still lists all frames fail on the last frame.

Folders of frame images (a directory, or any path checked with ``frames_fps``) cost one directory
listing and one header read per image, plus, with ``decode=True``, decoding the first and the last
image the clip needs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Hashable, Iterable

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.video.sampler import SamplingError, frame_range, smart_nframes

VideoItem = Any  # a path (str | Path), a (path, start_s, end_s) or a (path, start_s, end_s, frames_fps) tuple


def _decodes_at(container: Any, stream: Any, t_s: float, fps: float) -> bool:
    """Seek to the keyframe before ``t_s`` and decode forward to the frame at ``t_s``."""
    tb = float(stream.time_base)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    target = start + t_s
    container.seek(max(int(target / tb), int(stream.start_time or 0)), backward=True, any_frame=False, stream=stream)
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        if frame.pts * tb >= target - 0.5 / fps:
            return True
    return False


def check_video(
    path: Path | str,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    decode: bool = True,
    protocol: Protocol | None = None,
    frames_fps: float | None = None,
) -> str | None:
    """None when ``path`` (clipped to [start_s, end_s]) is usable, else a short problem.

    Problems: ``"missing"``, ``"empty file (0 bytes)"``, ``"does not decode: …"``,
    ``"too short: …"``. Without ``protocol`` a clip needs at least 2 frames; with it, the
    protocol's ``smart_nframes`` must succeed on the clip. A directory, or any path with
    ``frames_fps``, is checked as a folder of frame images (:func:`check_frame_folder`).
    """
    import av

    from vpbench.video.decode import stream_info

    path = Path(path)
    if frames_fps is not None or path.is_dir():
        return check_frame_folder(path, start_s, end_s, decode=decode, protocol=protocol, frames_fps=frames_fps)
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "does not decode: no video stream"
            stream = container.streams.video[0]
            info = stream_info(container, stream, path)
            if info.fps <= 0:
                return "does not decode: no frame rate"
            problem, first, last = _clip_problem(info.n_frames, info.fps, start_s, end_s, protocol)
            if problem:
                return problem
            if decode:
                for index in (first, last):
                    if not _decodes_at(container, stream, index / info.fps, info.fps):
                        return f"does not decode: no frame {index} of {info.n_frames} (truncated?)"
    except MissingMedia as exc:  # raised by the demux count of files without nb_frames
        return f"does not decode: {exc}"
    except (av.FFmpegError, OSError, ValueError) as exc:
        return f"does not decode: {exc}"
    return None


def _clip_problem(
    n_frames: int, fps: float, start_s: float | None, end_s: float | None, protocol: Protocol | None
) -> tuple[str | None, int, int]:
    """(problem or None, first frame, last frame) of the clip [start_s, end_s]."""
    try:
        first, last, count = frame_range(n_frames, fps, start_s, end_s)
    except SamplingError as exc:
        return f"too short: {exc}", 0, 0
    need = protocol.frame_factor if protocol is not None else 2
    if count < need:
        return f"too short: {count} frame(s) in the clip, need >= {need}", first, last
    if protocol is not None:
        try:
            smart_nframes(protocol, count, fps)
        except SamplingError as exc:
            return f"too short: {exc}", first, last
    return None, first, last


def check_frame_folder(
    path: Path | str,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    decode: bool = True,
    protocol: Protocol | None = None,
    frames_fps: float | None = None,
) -> str | None:
    """None when the frame folder ``path`` read at ``frames_fps`` is usable, else a short problem.

    Problems: ``"missing folder"``, ``"not a folder of frame images …"``, ``"no frames_fps …"``,
    ``"folder has no frame images (.jpg/.jpeg/.png)"``, ``"unreadable image NAME: …"``,
    ``"frame sizes differ: …"``, ``"too short: …"``. Every image header is read (size > 0,
    parses, same size as the first); with ``decode`` the clip's first and last images are decoded.
    """
    import math

    from vpbench.video.folder import FrameImageError, image_size, list_frame_files, read_rgb

    path = Path(path)
    if not path.exists():
        return "missing folder"
    if not path.is_dir():
        return "not a folder of frame images (frames_fps is set but the path is a file)"
    if frames_fps is None or not (math.isfinite(frames_fps) and frames_fps > 0):
        return (f"no frames_fps for a folder of frame images (got {frames_fps!r}); the task loader must "
                "set VideoRef.frames_fps to the rate the frames were extracted at")
    try:
        files = list_frame_files(path)
    except OSError as exc:
        return f"unreadable folder: {exc}"
    if not files:
        return "folder has no frame images (.jpg/.jpeg/.png)"
    try:
        size = image_size(files[0])
        for f in files[1:]:
            other = image_size(f)
            if other != size:
                return (f"frame sizes differ: {f.name} is {other[0]}x{other[1]}, "
                        f"{files[0].name} is {size[0]}x{size[1]}")
        problem, first, last = _clip_problem(len(files), float(frames_fps), start_s, end_s, protocol)
        if problem:
            return problem
        if decode:
            for index in dict.fromkeys((first, last)):
                read_rgb(files[index], size)
    except FrameImageError as exc:
        return str(exc)
    return None


def _as_item(item: VideoItem) -> tuple[Path | str, float | None, float | None, float | None]:
    if isinstance(item, tuple):
        path, start_s, end_s, *rest = item
        return path, start_s, end_s, (rest[0] if rest else None)
    return item, None, None, None


def check_videos(
    items: Iterable[VideoItem],
    workers: int = 2,
    *,
    decode: bool = True,
    protocol: Protocol | None = None,
) -> dict[Hashable, str]:
    """Check many videos in ``workers`` threads; returns {item: problem} for the bad ones only.

    ``items`` are paths, ``(path, start_s, end_s)`` or ``(path, start_s, end_s, frames_fps)``
    tuples (the last for folders of frame images); keys are the items as given.
    """
    unique = list(dict.fromkeys(items))

    def one(item: VideoItem) -> str | None:
        path, start_s, end_s, frames_fps = _as_item(item)
        return check_video(path, start_s, end_s, decode=decode, protocol=protocol, frames_fps=frames_fps)

    if workers <= 1 or len(unique) <= 1:
        results = [one(item) for item in unique]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, unique))
    return {item: problem for item, problem in zip(unique, results) if problem is not None}
