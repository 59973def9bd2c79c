"""Frozen data types shared by every part of vpbench.

A benchmark item is a ``Sample``; the engine turns it into a ``Request`` (prompt + protocol),
a backend answers with a ``Response``, and the engine writes one ``Record`` per sample to
``records.jsonl``. Aggregation turns records into ``MetricResult``s inside a ``TaskResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np


@dataclass(frozen=True, slots=True)
class VideoRef:
    """A video relative to a task's data root, optionally clipped to [start_s, end_s].

    ``path`` is a video file, or a folder of frame images (jpg/jpeg/png, natural order) read at
    ``frames_fps``.
    """

    path: str
    start_s: float | None = None
    end_s: float | None = None
    frames_fps: float | None = None
    """The frame rate of a folder of frame images; None for video files."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One scored question. ``id`` is stable across runs (never a row index).

    ``answer`` is None when the split hides it (scored as unscorable, never as wrong).
    ``cluster`` groups dependent samples (the video id) for clustered statistics.
    ``groups`` holds categorical breakdowns, e.g. {"question_type": "Camera Motion"}.
    ``meta`` holds task-specific plain values the scorer needs (kept in the record).
    """

    id: str
    task: str
    video: VideoRef | None
    question: str
    options: tuple[str, ...] = ()
    answer: str | None = None
    cluster: str = ""
    groups: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """A piece of a chat message: text, or the request's video."""

    kind: Literal["text", "video"]
    text: str = ""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Frames:
    """Decoded RGB frames ``array`` [T, H, W, 3] uint8 and their timestamps in seconds [T]."""

    array: np.ndarray
    timestamps_s: tuple[float, ...]
    source_fps: float
    sampler_fingerprint: str
    sample_fps: float | None = None
    """qwen-vl-utils' effective rate: T / frames spanned × source_fps (sets mRoPE time steps)."""

    def __post_init__(self) -> None:
        if self.array.ndim != 4 or self.array.shape[-1] != 3:
            raise ValueError(f"frames must be [T,H,W,3], got {self.array.shape}")
        if len(self.timestamps_s) != self.array.shape[0]:
            raise ValueError("one timestamp per frame is required")


@dataclass(frozen=True)
class Request:
    """What a backend is asked: chat messages (with at most one video part) plus decoding.

    ``options`` repeats the sample's labelled options ("A. ...") for backends that score choices.

    ``fingerprint`` is a sha256 over the task, messages, video ref, protocol fingerprint and
    decoding; it keys the response cache together with the model fingerprint.
    """

    sample_id: str
    task: str
    messages: tuple[Message, ...]
    video: VideoRef | None
    options: tuple[str, ...]
    protocol_fingerprint: str
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    fingerprint: str

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True, slots=True)
class Response:
    sample_id: str
    text: str
    n_input_tokens: int | None = None
    n_output_tokens: int | None = None
    latency_s: float | None = None
    finish_reason: str | None = None
    cached: bool = False
    error: str | None = None
    frame_timestamps_s: tuple[float, ...] | None = None
    """Timestamps of the frames the response was made from, kept by the response cache so that a
    record served from it carries them without decoding (None: not known)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One line of ``records.jsonl``: everything needed to re-parse and re-score a sample."""

    sample_id: str
    task: str
    cluster: str
    groups: Mapping[str, str]
    answer: str | None
    options: tuple[str, ...]
    meta: Mapping[str, Any]
    request_fingerprint: str
    protocol_fingerprint: str
    frame_timestamps_s: tuple[float, ...]
    response: str
    parsed: str | None
    parser: str
    scores: Mapping[str, float]
    timing: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    variant: str = "full"
    """"full", or "key_absent" for the perception-gap pass (key frames replaced)."""
    key_frames: tuple[int, ...] = ()
    """Indices (into the sampled frames) replaced in the key_absent variant."""

    @property
    def scorable(self) -> bool:
        return self.answer is not None


@dataclass(frozen=True)
class MetricResult:
    """A metric value on a 0-1 scale with its CI; ``ci_method`` names how the CI was made."""

    name: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    n_clusters: int
    n_failed: int = 0
    ci_method: str = "none"


@dataclass(frozen=True)
class TaskResult:
    task: str
    task_version: str
    protocol_fingerprint: str
    sample_set_hash: str
    coverage: float
    partial: bool
    metrics: tuple[MetricResult, ...]
    by_group: Mapping[str, tuple[MetricResult, ...]]
    counts: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
