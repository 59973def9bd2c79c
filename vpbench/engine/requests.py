"""Sample + protocol → Request, with a content fingerprint over everything that shapes the answer."""

from __future__ import annotations

from vpbench.errors import ConfigError
from vpbench.hashing import stable_hash
from vpbench.protocol import Protocol
from vpbench.task import Task
from vpbench.types import Request, Sample


def build_request(task: Task, sample: Sample, protocol: Protocol) -> Request:
    try:
        messages = task.build_messages(sample, protocol)
    except (KeyError, IndexError) as e:  # str.format on a template naming a field the task does not fill
        raise ConfigError(
            f"{task.name}: protocol.prompt_template names the unknown field {{{str(e).strip(chr(39))}}}; "
            f"Fix: use only the fields tasks/{task.name}/README.md documents (e.g. {{question}})") from e
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
    """Identity of the evaluated sample set: ids, answers, options, meta and videos (order-independent):
    correcting an answer in the annotation changes it."""
    rows = sorted((s.id, s.answer, s.video.path if s.video else None, s.question, s.options,
                   stable_hash(dict(s.meta))) for s in samples)
    return stable_hash(rows)
