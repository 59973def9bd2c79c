"""Video decoding with PyAV: probe, sample by the protocol, and fetch raw frames by index.

Frame index ``i`` means the i-th frame in presentation order (as decord / torchvision count). The
decoder first demuxes the stream (packets only, no decoding) to build the exact presentation
timestamp of every frame and the keyframe positions, then decodes greedily: for each wanted frame
it either keeps decoding forward or, when a keyframe lies far enough ahead of the current
position, seeks backward to the keyframe at or before the target and decodes forward from there.
Dense sampling therefore decodes sequentially and sparse sampling seeks: a target whose GOP holds
no earlier target starts at its keyframe, and decoding stops at the last target before the next
seek.

Fast path: for codecs whose non-reference frames nothing else predicts from (``SKIP_NONREF_CODECS``:
H.264, HEVC, MPEG-1/2/4), packets that are not a target are sent with ``skip_frame=NONREF``, so the
decoder drops the unsampled non-reference (e.g. unreferenced B) frames and decodes only the
reference chain the targets depend on. Reference frames decode exactly as before and targets are
decoded in full, so every returned frame is bit-identical to a full sequential decode
(tests/test_decode_fast_path.py).

Resize: only targets are converted (one swscale pass to RGB) and resized, skipped when the size
already matches. qwen-vl-utils resizes with torchvision's bicubic antialiased resize on float tensors; we
cannot ship torchvision, so frames are resized with PIL's bicubic filter (which also antialiases
when shrinking) to the exact ``smart_resize`` size and kept as uint8. Pixel values can differ from
torchvision's by a few levels; sizes, frame choice and counts are identical. The HF backend
therefore receives frames already at the ``smart_resize`` size (its processor must not resize
again, see research training.md §3.7).

Folders of frame images are read by :mod:`vpbench.video.folder` through the same entry points.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.types import Frames
from vpbench.video.sampler import SamplingError, plan_sampling

# Decoding this many frames costs about as much as one seek (flush + re-read from a keyframe).
SEEK_COST_FRAMES = 8
# Frames decoded past a target before it is declared missing (out-of-order output, e.g. AVI).
REORDER_SLACK_FRAMES = 16
# Codecs (FFmpeg names) whose skip_frame=NONREF drops only frames no other frame references.
SKIP_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"})


@dataclass(frozen=True)
class VideoInfo:
    """Container facts about the first video stream."""

    n_frames: int
    fps: float
    duration_s: float
    width: int
    height: int


@dataclass(frozen=True)
class _Index:
    """Per-frame presentation timestamps (stream time base), sorted, and keyframe positions."""

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]  # presentation indices of keyframes, sorted
    time_base: float

    def keyframe_at_or_before(self, i: int) -> int:
        k = bisect.bisect_right(self.keyframes, i) - 1
        return self.keyframes[k] if k >= 0 else 0

    def index_of(self, pts: int) -> int:
        """Presentation index of a decoded frame's pts (nearest frame if not listed)."""
        k = bisect.bisect_left(self.pts, pts)
        if k < len(self.pts) and self.pts[k] == pts:
            return k
        if k == 0:
            return 0
        if k == len(self.pts):
            return len(self.pts) - 1
        return k if self.pts[k] - pts < pts - self.pts[k - 1] else k - 1


def missing_media(path: Path | str, problem: str, fix: str) -> MissingMedia:
    return MissingMedia(f"video {path}: {problem}. Fix: {fix}")


_FIX_REDOWNLOAD = "re-download or re-encode the file (ffmpeg -i in.mp4 -c:v libx264 out.mp4)"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise missing_media(path, "missing", "check the task's data root / video path, or download the videos")
    if path.is_dir():
        raise missing_media(path, "is a directory, not a video file", "point the sample at the video file")
    if path.stat().st_size == 0:
        raise missing_media(path, "empty file (0 bytes)", _FIX_REDOWNLOAD)


def _open(path: Path) -> Any:
    """Open ``path`` and return (container, first video stream); MissingMedia on any failure."""
    import av

    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise missing_media(path, f"does not decode: {exc}", _FIX_REDOWNLOAD) from exc
    if not container.streams.video:
        container.close()
        raise missing_media(path, "has no video stream", "point the sample at a video file")
    return container, container.streams.video[0]


def _stream_fps(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return 0.0


def _build_index(container: Any, stream: Any, path: Path) -> _Index:
    """Demux (no decoding) the whole stream: sorted frame pts and keyframe presentation indices.

    Raises MissingMedia ("truncated") when the container header lists more frames than can be
    demuxed (a cut download whose index survived).
    """
    import av

    entries: list[tuple[int, bool]] = []
    n_packets = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            n_packets += 1
            if packet.pts is None or packet.is_discard:
                continue
            entries.append((packet.pts, packet.is_keyframe))
    except (av.FFmpegError, OSError) as exc:
        raise missing_media(path, f"does not decode (demux failed: {exc})", _FIX_REDOWNLOAD) from exc
    listed = int(stream.frames or 0)
    if listed > n_packets:
        raise missing_media(
            path, f"truncated: the header lists {listed} frames but only {n_packets} can be read", _FIX_REDOWNLOAD
        )
    entries.sort()
    pts = tuple(p for p, _ in entries)
    keys = tuple(i for i, (_, key) in enumerate(entries) if key) or (0,)
    return _Index(pts=pts, keyframes=keys, time_base=float(stream.time_base))


def stream_info(container: Any, stream: Any, path: Path, index: _Index | None = None) -> VideoInfo:
    """VideoInfo of an open ``stream`` (frame count from ``index`` when given, see :func:`probe`)."""
    fps = _stream_fps(stream)
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    if index is not None:
        n_frames = len(index.pts)
    else:
        n_frames = int(stream.frames or 0)
        if n_frames <= 0:
            n_frames = len(_build_index(container, stream, path).pts)
    if n_frames <= 0 and duration > 0 and fps > 0:
        n_frames = round(duration * fps)
    if duration <= 0 and fps > 0:
        duration = n_frames / fps
    width, height = stream.codec_context.width, stream.codec_context.height
    return VideoInfo(n_frames=n_frames, fps=fps, duration_s=duration, width=width, height=height)


def probe(path: Path | str) -> VideoInfo:
    """Frame count, fps, duration and size of the first video stream.

    The count is the container's ``nb_frames`` when it has one (mp4/mov), else a demux count
    (packets, no decoding; mkv/webm store no count), else ``round(duration * fps)``.
    """
    path = Path(path)
    container, stream = _open(path)
    try:
        return stream_info(container, stream, path)
    finally:
        container.close()


def _iter_decoded(container: Any, stream: Any, wanted_pts: set[int] | None = None) -> Iterator[Any]:
    """Decoded frames from the container's current position. With ``wanted_pts``, a packet whose
    pts is not wanted is decoded with ``skip_frame=NONREF`` (dropped when nothing references it)."""
    if wanted_pts is None:
        yield from container.decode(stream)
        return
    cc = stream.codec_context
    skipping = False
    for packet in container.demux(stream):
        skip = packet.pts is not None and packet.pts not in wanted_pts
        if skip != skipping:
            cc.skip_frame = "NONREF" if skip else "DEFAULT"
            skipping = skip
        yield from packet.decode()
    if skipping:
        cc.skip_frame = "DEFAULT"


def _decode_targets(
    container: Any, stream: Any, index: _Index, path: Path, targets: Sequence[int], convert: Any
) -> dict[int, tuple[Any, float]]:
    """Decode the frames at presentation ``targets``; returns {index: (convert(frame), time_s)}.

    Greedy: keep decoding forward while the next target is close; seek to the keyframe at or
    before a target when a keyframe lies more than ``SEEK_COST_FRAMES`` past the current position.
    If a seek lands past its target (keyframe index in odd files), retry from an earlier keyframe.
    """
    import av

    n_total = len(index.pts)
    wanted = sorted(set(targets))
    if not wanted:
        return {}
    if wanted[0] < 0 or wanted[-1] >= n_total:
        bad = wanted[0] if wanted[0] < 0 else wanted[-1]
        raise missing_media(path, f"too short: frame {bad} requested but the stream has {n_total} frames", _FIX_REDOWNLOAD)
    wanted_set = set(wanted)
    out: dict[int, tuple[Any, float]] = {}
    frames: Iterator[Any] | None = None
    pos = -1  # presentation index of the last decoded frame
    # pts still to decode in full (the set shrinks as targets arrive); None: decode every frame
    pending_pts = {index.pts[i] for i in wanted} if stream.codec_context.name in SKIP_NONREF_CODECS else None

    def seek_to(i: int) -> Iterator[Any]:
        container.seek(index.pts[max(i, 0)], backward=True, any_frame=False, stream=stream)
        return _iter_decoded(container, stream, pending_pts)

    try:
        for target in wanted:
            if target in out:
                continue
            key = index.keyframe_at_or_before(target)
            fresh = frames is None or pos >= target or key - pos > SEEK_COST_FRAMES
            if fresh:
                frames, pos = seek_to(key), -1
            fallback = key
            overshoot = 0
            while target not in out:
                assert frames is not None
                try:
                    frame = next(frames)
                except StopIteration:
                    raise missing_media(
                        path, f"truncated: decoding stopped before frame {target} of {n_total}", _FIX_REDOWNLOAD
                    ) from None
                if frame.pts is None:
                    raise missing_media(path, "does not decode: frames without timestamps", _FIX_REDOWNLOAD)
                i = index.index_of(frame.pts)
                if fresh and i > target:
                    # the seek landed after the target: go back one more keyframe
                    if fallback <= 0:
                        raise missing_media(path, f"does not decode: cannot reach frame {target}", _FIX_REDOWNLOAD)
                    fallback = index.keyframe_at_or_before(fallback - 1)
                    frames, pos = seek_to(fallback), -1
                    continue
                fresh = False
                pos = max(pos, i)
                if i in wanted_set and i not in out:
                    out[i] = (convert(frame), float(frame.pts * index.time_base))
                    if pending_pts is not None:
                        pending_pts.discard(index.pts[i])
                if i > target and target not in out:
                    overshoot += 1  # tolerate decoders that emit frames out of order (AVI B-frames)
                if overshoot > REORDER_SLACK_FRAMES:
                    raise missing_media(
                        path, f"does not decode: frame {target} of {n_total} is missing in the stream", _FIX_REDOWNLOAD
                    )
    except (av.FFmpegError, OSError) as exc:
        raise missing_media(path, f"does not decode: {exc}", _FIX_REDOWNLOAD) from exc
    return out


def _to_rgb(frame: Any) -> np.ndarray:
    """uint8 [H, W, 3] RGB of a decoded frame (one swscale conversion)."""
    return frame.to_ndarray(format="rgb24")


def decode_indices(path: Path | str, indices: Sequence[int]) -> np.ndarray:
    """Raw RGB frames at presentation ``indices`` (any order, repeats allowed): uint8 [len, H, W, 3].

    For a folder of frame images, index ``i`` is the i-th image in natural order.
    """
    path = Path(path)
    if path.is_dir():
        from vpbench.video.folder import _checked, _folder_media, frame_files, image_size, read_rgb

        files = frame_files(path)
        bad = [i for i in indices if not 0 <= i < len(files)]
        if bad:
            raise _folder_media(path, f"too short: frame {bad[0]} requested but the folder has {len(files)} images",
                                "drop the sample or fix its clip times")
        size = _checked(path, image_size, files[0])
        return np.stack([_checked(path, read_rgb, files[i], size) for i in indices]) if len(indices) else (
            np.zeros((0, size[1], size[0], 3), dtype=np.uint8))
    container, stream = _open(path)
    try:
        index = _build_index(container, stream, path)
        got = _decode_targets(container, stream, index, path, list(indices), _to_rgb)
    finally:
        container.close()
    if len(indices) == 0:
        return np.zeros((0, stream.codec_context.height, stream.codec_context.width, 3), dtype=np.uint8)
    return np.stack([got[i][0] for i in indices])


def decode_frames(
    path: Path | str,
    protocol: Protocol,
    start_s: float | None = None,
    end_s: float | None = None,
    *,
    frames_fps: float | None = None,
) -> Frames:
    """Sample ``path`` (clipped to [start_s, end_s]) as qwen-vl-utils would, resized with PIL bicubic.

    Returns ``Frames`` with ``array`` uint8 [T, H, W, 3] at the ``smart_resize`` size,
    ``timestamps_s`` the decoded frames' actual pts in seconds, the stream's average fps and
    ``protocol.sampler_fingerprint()``. The frame count is the demuxed packet count. Raises
    MissingMedia for missing, empty, undecodable or too-short videos.

    A directory ``path`` (or any ``path`` when ``frames_fps`` is given) is a folder of frame
    images read at ``frames_fps`` (see :func:`vpbench.video.folder.decode_frame_folder`).
    """
    from PIL import Image

    path = Path(path)
    if frames_fps is not None or path.is_dir():
        from vpbench.video.folder import decode_frame_folder

        return decode_frame_folder(path, protocol, frames_fps, start_s, end_s)
    container, stream = _open(path)
    try:
        index = _build_index(container, stream, path)
        info = stream_info(container, stream, path, index)
        if info.fps <= 0:
            raise missing_media(path, "does not decode: the stream reports no frame rate", _FIX_REDOWNLOAD)
        try:
            plan = plan_sampling(protocol, info.n_frames, info.fps, info.height, info.width, start_s, end_s)
        except SamplingError as exc:
            raise missing_media(path, f"too short: {exc}", "drop the sample or fix its clip times") from exc
        size = (plan.resized_w, plan.resized_h)

        def convert(frame: Any) -> np.ndarray:
            rgb = _to_rgb(frame)  # the pixels frame.to_image() holds, one copy fewer
            if (rgb.shape[1], rgb.shape[0]) == size:
                return rgb
            return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC), dtype=np.uint8)

        got = _decode_targets(container, stream, index, path, plan.indices, convert)
    finally:
        container.close()
    return Frames(
        array=np.stack([got[i][0] for i in plan.indices]),
        timestamps_s=tuple(got[i][1] for i in plan.indices),
        source_fps=info.fps,
        sampler_fingerprint=protocol.sampler_fingerprint(),
        sample_fps=plan.sample_fps,
    )
