"""Sample + protocol → Request, with a content fingerprint over everything that shapes the answer."""

from __future__ import annotations

from vpbench.hashing import stable_hash
from vpbench.protocol import Protocol
from vpbench.task import Task
from vpbench.types import Request, Sample


def build_request(task: Task, sample: Sample, protocol: Protocol) -> Request:
    messages = task.build_messages(sample, protocol)
    has_video = any(p.kind == "video" for m in messages for p in m.parts)
    video = sample.video if has_video else None
    if has_video and video is None:
        raise ValueError(f"{task.name}: sample {sample.id} has a video part but no video reference")
    body = {
        "task": task.name,
        "task_version": task.version,
        "messages": messages,
        "video": video,
        "options": sample.options,
        "protocol": protocol.fingerprint(),
    }
    return Request(
        sample_id=sample.id,
        task=task.name,
        messages=messages,
        video=video,
        options=sample.options,
        protocol_fingerprint=protocol.fingerprint(),
        max_new_tokens=protocol.max_new_tokens,
        temperature=protocol.temperature,
        top_p=protocol.top_p,
        seed=protocol.seed,
        fingerprint=stable_hash(body, length=32),
    )


def sample_set_hash(samples: list[Sample]) -> str:
    """Identity of the evaluated sample set: ids, answers and videos (order-independent)."""
    rows = sorted((s.id, s.answer, s.video.path if s.video else None, s.question) for s in samples)
    return stable_hash(rows)
