"""Write and read small mp4 clips with PyAV (no ffmpeg binary, no torchvision).

``write_mp4`` encodes a ``[T, H, W, 3]`` uint8 RGB array as H.264 (libx264, yuv420p) at a
constant frame rate: frame ``t`` is shown at ``t / fps`` seconds and every frame decodes back (no
drops, no duplicates). Encoding is single-threaded with fixed options, so identical input gives identical
bytes for a given libx264 build; the file is written to a temporary name in the same folder and
renamed into place (readers never see a half-written file).

If libx264 is not compiled into PyAV's FFmpeg, ``write_mp4`` falls back to ``mpeg4`` and emits a
``RuntimeWarning`` saying so (the returned codec name tells the caller which one was used).

``read_mp4`` decodes every frame back to ``[T, H, W, 3]`` uint8 RGB plus the stream's frame rate.
"""

from __future__ import annotations

import os
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from vpbench.errors import DataError, MissingMedia

FALLBACK_CODEC = "mpeg4"
# crf 16 keeps flat synthetic colours and 1-2 frame flashes intact after yuv420p + H.264.
# mbtree=0: with macroblock-tree rate control, PyAV's libx264 encoded identical frames to different
# bytes depending on the process heap (tests/test_synth.py::test_h264_bytes_do_not_depend_on_process_heap).
_X264_OPTIONS = {"crf": "16", "preset": "medium", "threads": "1", "x264-params": "mbtree=0"}


def _codec_available(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
    except Exception:  # av raises UnknownCodecError / ValueError depending on the version
        return False
    return True


def _check_frames(path: Path, frames: np.ndarray, fps: float) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise DataError(f"write_mp4({path}): frames must be a uint8 numpy array, got "
                        f"{type(frames).__name__} {getattr(frames, 'dtype', '')}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise DataError(f"write_mp4({path}): frames must have shape [T>=1, H, W, 3], got {frames.shape}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise DataError(f"write_mp4({path}): yuv420p needs even height and width, got {h}x{w}; "
                        "crop or pad the frames to even sizes")
    if not fps > 0:
        raise DataError(f"write_mp4({path}): fps must be > 0, got {fps}")


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, codec: str = "libx264") -> str:
    """Encode RGB ``frames`` [T, H, W, 3] uint8 (H, W even) to ``path`` at ``fps``.

    Returns the codec actually used (``codec``, or ``"mpeg4"`` when libx264 is missing).
    Raises ``DataError`` on a bad array or fps; other codecs than libx264/mpeg4 must exist.
    """
    import av

    path = Path(path)
    _check_frames(path, frames, fps)
    used = codec
    if not _codec_available(codec):
        if codec != "libx264":
            raise DataError(f"write_mp4({path}): codec {codec!r} is not available in PyAV's FFmpeg")
        warnings.warn(f"libx264 is not available in PyAV's FFmpeg; writing {path} with "
                      f"{FALLBACK_CODEC} instead (lossier, different bytes)", RuntimeWarning, stacklevel=2)
        used = FALLBACK_CODEC
    rate = Fraction(fps).limit_denominator(1001)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(used, rate=rate)
            stream.width = int(frames.shape[2])
            stream.height = int(frames.shape[1])
            stream.pix_fmt = "yuv420p"
            if used == "libx264":
                stream.options = dict(_X264_OPTIONS)
            else:
                stream.bit_rate = 4_000_000
                stream.thread_count = 1
            tick = Fraction(1, 1) / rate
            for t, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = t
                frame.time_base = tick  # pts counts frames
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return used


def read_mp4(path: str | Path) -> tuple[np.ndarray, float]:
    """Decode every frame of ``path``: returns (frames [T, H, W, 3] uint8 RGB, average fps)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MissingMedia(f"read_mp4: no such video {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise MissingMedia(f"read_mp4: {path} does not decode ({exc}); re-generate or re-encode it") from exc
    if not frames:
        raise MissingMedia(f"read_mp4: {path} has no decodable video frames")
    return np.stack(frames), float(rate) if rate else 0.0
