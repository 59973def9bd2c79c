"""Prefetch: the next batch's frames are decoded — and the backend's per-sample preparation
(``Backend.prepare``: the hf backend's patchify and tokenisation) done — on one worker thread while
the model generates the current batch.

At most one batch is ahead (a bounded queue of one), so memory stays that of two batches. The
main thread keeps every decision: response-cache lookups, which sample is generated, the records
and their commit order, so records and resumability are those of the sequential loop. A sample
whose preparation failed on the worker raises the same exception, with its sample id, at the
point where the sequential loop would have raised it (after the previous batch was committed).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vpbench.errors import MissingMedia
from vpbench.models.base import Prepared
from vpbench.types import Frames, Request, Sample

FrameLoader = Callable[..., Frames]  # (path, protocol, start_s, end_s, *, frames_fps=None) -> Frames


@dataclass(frozen=True)
class Loaded:
    """One sample's frames (None: no video or a decode failure), the decode error as the record
    shows it, the seconds spent, the key frames replaced by a transform, the backend's prepared
    input (prefetch only) and an unexpected exception to re-raise on the main thread."""

    frames: Frames | None = None
    error: str | None = None
    seconds: float = 0.0
    keys: tuple[int, ...] = ()
    prepared: Prepared | None = None
    failure: BaseException | None = None


def load_sample(video_path: Path, protocol: Any, load_frames: FrameLoader, request: Request, sample: Sample,
                transform: Callable[..., Any] | None) -> Loaded:
    """Decode ``request``'s frames (and apply ``transform``); a MissingMedia becomes the record's error."""
    assert request.video is not None
    t0 = time.perf_counter()
    keys: tuple[int, ...] = ()
    try:
        frames = load_frames(video_path, protocol, request.video.start_s, request.video.end_s,
                             frames_fps=request.video.frames_fps)
        if transform is not None:
            frames, keys = transform(sample, frames)
    except MissingMedia as e:
        return Loaded(None, f"video decode failed: {e}", time.perf_counter() - t0)
    return Loaded(frames, None, time.perf_counter() - t0, keys)


class Prefetcher:
    """One worker thread, at most one batch ahead. ``submit(chunk)`` starts preparing a batch;
    ``take()`` waits for it and returns ``{sample_id: Loaded}``."""

    def __init__(self, work: Callable[[Sequence[Sample]], Mapping[str, Loaded]]) -> None:
        self._work = work
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpbench-prefetch")
        self._pending: Future | None = None

    def submit(self, chunk: Sequence[Sample]) -> None:
        if self._pending is not None:
            raise RuntimeError("prefetch: the previous batch was not taken (one batch ahead at most)")
        self._pending = self._pool.submit(self._work, list(chunk))

    def take(self) -> Mapping[str, Loaded]:
        if self._pending is None:
            return {}
        pending, self._pending = self._pending, None
        return pending.result()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_ahead(sample: Sample, request: Request, video_path: Path, protocol: Any, load_frames: FrameLoader,
                  prepare: Callable[[Prepared], Prepared] | None) -> Loaded:
    """The worker's job for one sample: decode, then the backend's preparation; any exception is
    kept (with the sample id) for the main thread to raise where the sequential loop would."""
    try:
        loaded = load_sample(video_path, protocol, load_frames, request, sample, None)
        if loaded.error is None and prepare is not None:
            loaded = dataclasses.replace(loaded, prepared=prepare(Prepared(request, loaded.frames, video_path)))
        return loaded
    except Exception as e:  # noqa: BLE001 — re-raised unchanged on the main thread
        e.add_note(f"vpbench: raised while preparing sample {sample.id!r} ahead of generation (prefetch)")
        return Loaded(failure=e)
