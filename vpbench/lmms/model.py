"""A vpbench backend as an lmms-eval 0.7.x model: ``--model vpbench --model_args spec=SPEC``.

Registered through the ``lmms_eval.models`` entry point (``manifests``). ``spec`` is any vpbench
``--model`` spec (a checkpoint dir, ``hf:DIR``, ``openai:URL#M``, ``dummy:random``, ...);
``batch_size``, ``device`` and ``dtype`` are passed on as for ``vpbench run``.

On a task exported by ``vpbench lmms export-task`` the model rebuilds vpbench's own request and
frames from the doc (same prompt, same sampled and resized frames, same decoding as ``vpbench run``),
so the two harnesses give the same answers. On any other lmms-eval task it shows the context text
and the first visual path decoded with vpbench's default protocol (``Protocol()``; override with
``fps=`` / ``nframes=`` in model_args).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest


def manifests() -> list[ModelManifest]:
    return [ModelManifest(model_id="vpbench", simple_class_path="vpbench.lmms.model.VpbenchLmms")]


class VpbenchLmms(lmms):
    def __init__(self, spec: str, batch_size: int | str = 1, device: str = "auto", dtype: str = "auto",
                 fps: float | None = None, nframes: int | None = None, **kwargs: Any) -> None:
        super().__init__()
        from vpbench.models.loader import BackendOptions, load_backend
        from vpbench.protocol import Protocol

        self.backend = load_backend(spec, BackendOptions(batch_size=int(batch_size), device=device, dtype=dtype))
        self.foreign_protocol = Protocol(fps=None if nframes else float(fps or 2.0),
                                         nframes=int(nframes) if nframes else None)

    def _prepare(self, instance: Any) -> Any:
        from vpbench.models.base import Prepared
        from vpbench.video.decode import decode_frames

        context, gen_kwargs, doc_to_visual, doc_id, task, split = instance.args
        doc = self.task_dict[task][split][doc_id]
        if "sample" in doc and "protocol" in doc:
            req, path, protocol = _vpbench_request(doc)
        else:
            req, path, protocol = _foreign_request(context, gen_kwargs, doc_to_visual(doc), f"{task}/{doc_id}",
                                                   task, self.foreign_protocol)
        frames = None
        if self.backend.needs_frames and req.video is not None:
            frames = decode_frames(path, protocol, req.video.start_s, req.video.end_s,
                                   frames_fps=req.video.frames_fps)
        return Prepared(req, frames)

    def generate_until(self, requests: list[Any]) -> list[str]:
        out: list[str] = []
        size = max(1, self.backend.batch_size)
        for start in range(0, len(requests), size):
            batch = [self._prepare(r) for r in requests[start: start + size]]
            for resp in self.backend.generate(batch):
                if resp.error:
                    raise RuntimeError(f"vpbench backend failed on {resp.sample_id}: {resp.error}")
                out.append(resp.text)
        return out

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError("vpbench backends generate text; loglikelihood tasks are not supported")

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("vpbench backends answer single-round requests")


def _vpbench_request(doc: dict[str, Any]) -> tuple[Any, Path | None, Any]:
    from vpbench.engine.requests import build_request
    from vpbench.lmms.tasks import sample_from_json
    from vpbench.protocol import Protocol
    from vpbench.registry import get_task

    task = get_task(doc["task"])
    sample = sample_from_json(doc["sample"])
    protocol = Protocol(**json.loads(doc["protocol"]))
    req = build_request(task, sample, protocol)
    path = task.video_path(Path(doc["data_root"]), req.video.path) if req.video else None
    return req, path, protocol


def _foreign_request(context: str, gen_kwargs: dict[str, Any], visuals: list[Any], sample_id: str, task: str,
                     protocol: Any) -> tuple[Any, Path | None, Any]:
    from vpbench.hashing import stable_hash
    from vpbench.types import Message, Part, Request, VideoRef

    paths = [v for v in visuals or [] if isinstance(v, str)]
    parts = ((Part("video"),) if paths else ()) + (Part("text", context),)
    temperature = float(gen_kwargs.get("temperature", 0.0) or 0.0)
    req = Request(sample_id=sample_id, task=task, messages=(Message("user", parts),),
                  video=VideoRef(paths[0]) if paths else None, options=(), protocol_fingerprint=protocol.fingerprint(),
                  max_new_tokens=int(gen_kwargs.get("max_new_tokens", 128)), temperature=temperature,
                  top_p=float(gen_kwargs.get("top_p", 1.0) or 1.0), seed=0,
                  fingerprint=stable_hash((sample_id, context, paths, protocol.fingerprint()), length=32))
    return req, Path(paths[0]) if paths else None, protocol
