"""On-disk cache of sampled frames, one ``.npz`` per (video, sampler, clip).

Key = sha256 over: the resolved path, size and ``mtime_ns`` of the video, a sha256 of its first
and last MiB (so a replaced file with the same size and mtime still misses), the protocol's
``sampler_fingerprint()`` and the clip's start/end. Entries live at ``root/ab/<key>.npz`` and
hold ``frames`` uint8 [T,H,W,3], ``timestamps`` float64 [T], ``fps`` and ``fingerprint``.
A folder of frame images is identified by its resolved path and the sorted names, sizes and
``mtime_ns`` of its image files; its ``frames_fps`` joins the key.

Writes go to a temp file in the entry's directory and are published with ``os.replace``, so a
reader sees either no entry or a complete one. Two processes racing on the same key both decode
and both replace; the last rename wins and either result is valid (decoding is deterministic).
An unreadable or inconsistent entry is removed and decoded again; entries are therefore not fsynced
(the cache can always be rebuilt, and an fsync per entry cost more than the decode it saves).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from vpbench.hashing import stable_hash
from vpbench.protocol import Protocol
from vpbench.types import Frames

CACHE_FORMAT = 1
EDGE_BYTES = 1 << 20

# decoder(path, protocol, start_s, end_s[, frames_fps=]) -> Frames; defaults to decode.decode_frames
Decoder = Callable[..., Frames]


def folder_identity(path: Path | str) -> dict[str, object]:
    """Plain values that change when a frame image of the folder at ``path`` changes, appears or goes."""
    from vpbench.video.folder import list_frame_files

    resolved = Path(path).resolve()
    files = []
    for f in list_frame_files(resolved):
        st = f.stat()
        files.append([f.name, st.st_size, st.st_mtime_ns])
    return {"path": str(resolved), "frame_files": files}


def video_identity(path: Path | str) -> dict[str, object]:
    """Plain values that change when the file (or frame folder) at ``path`` changes."""
    if Path(path).is_dir():
        return folder_identity(path)
    resolved = Path(path).resolve()
    st = resolved.stat()
    h = hashlib.sha256()
    with open(resolved, "rb") as f:
        h.update(f.read(EDGE_BYTES))
        if st.st_size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, st.st_size - EDGE_BYTES))
            h.update(f.read(EDGE_BYTES))
    return {"path": str(resolved), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": h.hexdigest()}


class FrameCache:
    """Decode-once store for :func:`vpbench.video.decode.decode_frames` results under ``root``."""

    def __init__(self, root: Path | str, decoder: Decoder | None = None) -> None:
        self.root = Path(root)
        self._decoder = decoder
        self.hits = 0
        self.misses = 0

    # -- keys -------------------------------------------------------------------------------------
    def key(
        self,
        path: Path | str,
        protocol: Protocol,
        start_s: float | None,
        end_s: float | None,
        frames_fps: float | None = None,
    ) -> str:
        """Full sha256 hex key of one entry (reads the video's first and last MiB, or lists the
        frame folder)."""
        body: dict[str, object] = {
            "format": CACHE_FORMAT,
            "video": video_identity(path),
            "sampler": protocol.sampler_fingerprint(),
            "start_s": start_s,
            "end_s": end_s,
        }
        if frames_fps is not None:  # absent for video files, so their keys are unchanged
            body["frames_fps"] = float(frames_fps)
        return stable_hash(body, length=64)

    def entry_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    # -- public -----------------------------------------------------------------------------------
    def get_or_decode(
        self,
        path: Path | str,
        protocol: Protocol,
        start_s: float | None = None,
        end_s: float | None = None,
        *,
        frames_fps: float | None = None,
    ) -> Frames:
        """Cached frames for ``path`` under ``protocol``'s sampler, decoding (and storing) on a miss.

        ``frames_fps`` is the rate of a folder of frame images (None for video files). Decoding
        errors (missing, empty, undecodable, too short) propagate as MissingMedia and nothing is
        stored.
        """
        from vpbench.video.decode import decode_frames

        decoder = self._decoder or decode_frames
        extra = {} if frames_fps is None else {"frames_fps": frames_fps}
        p = Path(path)
        if frames_fps is not None or p.is_dir():  # a folder of frame images needs its rate
            usable = p.is_dir() and frames_fps is not None
        else:
            usable = p.is_file()
        if not usable:
            return decoder(p, protocol, start_s, end_s, **extra)  # raises the decoder's MissingMedia
        key = self.key(path, protocol, start_s, end_s, frames_fps)
        entry = self.entry_path(key)
        fingerprint = protocol.sampler_fingerprint()
        if entry.exists():
            frames = self._load(entry, fingerprint)
            if frames is not None:
                self.hits += 1
                return frames
        self.misses += 1
        frames = decoder(p, protocol, start_s, end_s, **extra)
        self._store(entry, frames)
        return frames

    # -- storage ----------------------------------------------------------------------------------
    @staticmethod
    def _load(entry: Path, fingerprint: str) -> Frames | None:
        """Read an entry; on any corruption remove it and return None."""
        try:
            with np.load(entry, allow_pickle=False) as z:
                array = z["frames"]
                timestamps = z["timestamps"]
                fps = float(z["fps"])
                stored_fp = str(z["fingerprint"])
                sample_fps = float(z["sample_fps"]) if "sample_fps" in z.files else float("nan")
            if stored_fp != fingerprint or array.dtype != np.uint8 or timestamps.ndim != 1:
                raise ValueError("entry does not match its key")
            return Frames(
                array=array,
                timestamps_s=tuple(float(t) for t in timestamps),
                source_fps=fps,
                sampler_fingerprint=stored_fp,
                sample_fps=None if np.isnan(sample_fps) else sample_fps,
            )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            try:
                entry.unlink()
            except FileNotFoundError:
                pass
            return None

    @staticmethod
    def _store(entry: Path, frames: Frames) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.stem[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    frames=np.ascontiguousarray(frames.array, dtype=np.uint8),
                    timestamps=np.asarray(frames.timestamps_s, dtype=np.float64),
                    fps=np.float64(frames.source_fps),
                    fingerprint=np.str_(frames.sampler_fingerprint),
                    sample_fps=np.float64(np.nan if frames.sample_fps is None else frames.sample_fps),
                )
            os.replace(tmp, entry)  # no fsync: an entry torn by a machine crash fails to load and is decoded again
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
