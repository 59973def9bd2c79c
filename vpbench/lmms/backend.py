"""``lmms:NAME[,key=value...]`` — an lmms-eval 0.7.x model class as a vpbench backend.

``NAME`` is any model lmms-eval resolves (built-ins, entry-point plug-ins); the ``key=value`` pairs
are its ``--model_args``. Each vpbench request becomes one ``generate_until`` Instance whose doc
holds the request; ``visual=frames`` (default) hands the model vpbench's own sampled and resized
frames as PIL images — the protocol is vpbench's — while ``visual=path`` hands it the video path
and the model samples the video its own way (then the run is only as comparable as that model's
defaults). Requires ``pip install --no-deps lmms-eval==0.7.3`` plus its few runtime needs (README).
"""

from __future__ import annotations

from typing import Any, Sequence

from vpbench.errors import ConfigError
from vpbench.hashing import stable_hash
from vpbench.models.base import BackendBase, Prepared
from vpbench.types import Response

_TASK, _SPLIT = "vpbench", "test"


def _split_args(arg: str) -> tuple[str, str, str]:
    name, _, rest = arg.partition(",")
    kept, visual = [], "frames"
    for pair in filter(None, rest.split(",")):
        key, _, value = pair.partition("=")
        if key == "visual":
            visual = value
        else:
            kept.append(pair)
    if not name or visual not in ("frames", "path"):
        raise ConfigError(f"--model lmms:{arg}: expected lmms:NAME[,key=value...] with visual=frames|path")
    return name, ",".join(kept), visual


class LmmsBackend(BackendBase):
    name = "lmms"
    needs_frames = True

    def __init__(self, model_name: str, model_args: str, visual: str, batch_size: int = 1) -> None:
        try:
            from lmms_eval.models import get_model
        except ImportError as e:
            raise ConfigError(f"--model lmms:{model_name}: lmms-eval is not installed ({e}); "
                              "pip install --no-deps lmms-eval==0.7.3 plus accelerate datasets loguru sacrebleu "
                              "evaluate pytz tenacity pytablewriter 'filelock<4' (README, lmms-eval bridge)") from e
        try:
            cls = get_model(model_name)
        except Exception as e:  # lmms-eval raises its own lookup errors
            raise ConfigError(f"--model lmms:{model_name}: lmms-eval has no such model ({e})") from e
        self.model_name, self.model_args, self.visual = model_name, model_args, visual
        self.batch_size = batch_size
        self.model = cls.create_from_arg_string(model_args, {"batch_size": batch_size})

    def fingerprint(self) -> str:
        import lmms_eval

        version = getattr(lmms_eval, "__version__", "")
        return stable_hash({"backend": self.name, "model": self.model_name, "args": self.model_args,
                            "visual": self.visual, "lmms_eval": version})

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "lmms_model": self.model_name, "model_args": self.model_args,
                "visual": self.visual, "fingerprint": self.fingerprint()}

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        from lmms_eval.api.instance import Instance, unwrap_generation_output

        docs, instances = {}, []
        for i, p in enumerate(batch):
            r = p.request
            docs[i] = {"frames": p.frames, "path": str(p.video_path) if p.video_path else None}
            context = "\n".join(part.text for m in r.messages for part in m.parts if part.kind == "text")
            gen = {"max_new_tokens": r.max_new_tokens, "temperature": r.temperature, "top_p": r.top_p,
                   "do_sample": r.temperature > 0, "until": []}
            instances.append(Instance("generate_until", (context, gen, self._doc_to_visual, i, _TASK, _SPLIT),
                                      idx=0, metadata={"task": _TASK, "doc_id": i, "repeats": 1}))
        self.model.task_dict = {_TASK: {_SPLIT: docs}}
        try:
            outputs = self.model.generate_until(instances)
        except Exception as e:  # the model's own failure: every sample of the batch failed, counted
            return [Response(p.request.sample_id, "", error=f"lmms-eval {self.model_name}: {e!r}") for p in batch]
        return [Response(p.request.sample_id, str(unwrap_generation_output(o)[0]), finish_reason="stop")
                for p, o in zip(batch, outputs, strict=True)]

    def _doc_to_visual(self, doc: dict[str, Any]) -> list[Any]:
        if self.visual == "path":
            return [doc["path"]] if doc["path"] else []
        if doc["frames"] is None:
            return []
        from PIL import Image

        return [Image.fromarray(f) for f in doc["frames"].array]


def from_spec(arg: str, spec: str, options: Any) -> LmmsBackend:
    name, model_args, visual = _split_args(arg)
    return LmmsBackend(name, model_args, visual, batch_size=options.batch_or(1))
