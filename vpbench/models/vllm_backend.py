"""``vllm:DIR[,key=value...]`` — a local Qwen2.5-VL-family checkpoint served by vLLM in this process.

The same frames and protocol as ``hf``: vpbench samples and resizes the frames itself and hands
them to vLLM as ``multi_modal_data={"video": frames}`` (uint8 [T, H, W, 3]) with the sampling rate
in ``mm_processor_kwargs={"fps": [fps]}`` — without it vLLM's processor assumes 2 fps and
Qwen2.5-VL's absolute-time positions (``second_per_grid_ts``) are wrong (lmms-eval #1260/#1393).
The prompt is the checkpoint's chat template over the same messages, one unexpanded
``<|video_pad|>`` per video (vLLM expands it). Greedy responses are cached like any other backend's.

Options (unknown keys are an error with a "did you mean"): ``tp`` (tensor-parallel GPUs per
replica, default 1), ``dp`` (replicas = data-parallel processes; must equal the launch's world size:
``vpbench run --nproc D`` / torchrun), ``gpu_memory_utilization`` (0.9), ``max_model_len`` (0: the
checkpoint's), ``enforce_eager`` (0/1), ``mm_encoder_tp_mode`` (``weights`` | ``data``). Checked before
anything loads: sizes >= 1, ``dp`` = world size, attention heads divisible by ``tp``, and
``tp`` × processes on this node <= visible GPUs. Rank k of a data-parallel run uses GPUs
[k·tp, (k+1)·tp) of its node. vLLM is CUDA-only and imported on first use (extra ``[vllm]``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vpbench.errors import ConfigError
from vpbench.hashing import file_sha256, stable_hash
from vpbench.models.base import BackendBase, Prepared, parse_spec_options
from vpbench.types import Frames, Request, Response


@dataclass(frozen=True)
class VLLMOptions:
    path: Path
    tp: int = 1
    dp: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 0
    enforce_eager: int = 0
    mm_encoder_tp_mode: str = "weights"

    def __post_init__(self) -> None:
        if self.tp < 1 or self.dp < 1:
            raise ConfigError(f"vllm backend: tp and dp must be >= 1, got tp={self.tp} dp={self.dp}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"vllm backend: gpu_memory_utilization must be in (0, 1], got "
                              f"{self.gpu_memory_utilization}")
        if self.max_model_len < 0 or self.enforce_eager not in (0, 1):
            raise ConfigError("vllm backend: max_model_len must be >= 0 and enforce_eager 0 or 1")
        if self.mm_encoder_tp_mode not in ("weights", "data"):
            raise ConfigError(f"vllm backend: mm_encoder_tp_mode must be 'weights' or 'data', got "
                              f"{self.mm_encoder_tp_mode!r}")

    @classmethod
    def parse(cls, arg: str) -> "VLLMOptions":
        """``DIR[,key=value...]``."""
        head, *pairs = arg.split(",")
        values = parse_spec_options(cls, pairs, ("path",), "vllm")
        return cls(path=Path(head), **values)


def check_layout(opts: VLLMOptions, config: dict[str, Any], *, world_size: int, local_world_size: int,
                 n_gpus: int) -> None:
    """Refuse, before anything loads, TP/DP combinations that cannot run (see module docstring)."""
    if opts.dp != world_size:
        raise ConfigError(f"vllm backend: dp={opts.dp} but this launch has {world_size} process(es); "
                          f"run `vpbench run --nproc {opts.dp} ...` (or torchrun --nproc_per_node {opts.dp})")
    text = config.get("text_config", config)
    heads = text.get("num_attention_heads") or config.get("num_attention_heads")
    kv_heads = text.get("num_key_value_heads") or config.get("num_key_value_heads") or heads
    if heads and heads % opts.tp:
        raise ConfigError(f"vllm backend: tp={opts.tp} does not divide the model's {heads} attention heads")
    if kv_heads and opts.tp > kv_heads and opts.tp % kv_heads:
        raise ConfigError(f"vllm backend: tp={opts.tp} is incompatible with {kv_heads} key/value heads")
    if local_world_size * opts.tp > n_gpus:
        raise ConfigError(f"vllm backend: {local_world_size} process(es) × tp={opts.tp} need "
                          f"{local_world_size * opts.tp} GPUs on this node, {n_gpus} visible")


def rank_gpus(local_rank: int, tp: int) -> str:
    """CUDA_VISIBLE_DEVICES for data-parallel rank ``local_rank``: its own ``tp`` GPUs."""
    return ",".join(str(local_rank * tp + i) for i in range(tp))


def build_vllm_input(request: Request, frames: Frames | None, render: Any) -> dict[str, Any]:
    """One vLLM prompt dict: chat-template text, the frames as the video, the sampling fps."""
    from vpbench.models.qwen_inputs import VIDEO_PAD, count_video_parts, sample_fps, to_hf_conversation

    n_videos = count_video_parts(request.messages)
    if n_videos > 1:
        raise ValueError(f"{request.sample_id}: a request holds at most one video part, got {n_videos}")
    prompt = render(to_hf_conversation(request.messages))
    if prompt.count(VIDEO_PAD) != n_videos:
        raise ValueError(f"{request.sample_id}: the chat template rendered {prompt.count(VIDEO_PAD)} {VIDEO_PAD} "
                         f"for {n_videos} video part(s)")
    item: dict[str, Any] = {"prompt": prompt}
    if n_videos:
        if frames is None:
            raise ValueError(f"{request.sample_id}: the request shows a video but no frames were decoded")
        item["multi_modal_data"] = {"video": frames.array}
        item["mm_processor_kwargs"] = {"fps": [sample_fps(frames)]}
    return item


def sampling_kwargs(request: Request) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments for the request's decoding."""
    greedy = request.temperature <= 0
    return {"max_tokens": request.max_new_tokens, "temperature": 0.0 if greedy else request.temperature,
            "top_p": 1.0 if greedy else request.top_p, "seed": request.seed}


class VLLMBackend(BackendBase):
    name = "vllm"
    needs_frames = True

    def __init__(self, opts: VLLMOptions, batch_size: int = 8, dtype: str = "auto") -> None:
        from vpbench.engine.shard import DistContext

        if not opts.path.is_dir() or not (opts.path / "config.json").is_file():
            raise ConfigError(f"vllm backend: {opts.path} is not a local checkpoint directory with a config.json")
        self.opts, self.dtype, self.batch_size = opts, dtype, batch_size
        self.config = json.loads((opts.path / "config.json").read_text(encoding="utf-8"))
        dist = DistContext.from_env()
        check_layout(opts, self.config, world_size=dist.world_size,
                     local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")), n_gpus=_visible_gpus())
        self.local_rank = dist.local_rank
        self._llm: Any = None
        self._render: Any = None

    def fingerprint(self) -> str:
        from vpbench.models.hf_qwen_vl import weights_sha256

        aux = {n: file_sha256(self.opts.path / n) for n in ("config.json", "tokenizer_config.json",
                                                            "chat_template.json", "preprocessor_config.json")
               if (self.opts.path / n).is_file()}
        return stable_hash({"backend": self.name, "weights": weights_sha256(self.opts.path)[0], "files": aux,
                            "dtype": self.dtype, "vllm": _vllm_version()})

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "path": str(self.opts.path), "tp": self.opts.tp, "dp": self.opts.dp,
                "dtype": self.dtype, "vllm": _vllm_version(), "fingerprint": self.fingerprint()}

    def load(self) -> None:
        if self._llm is not None:
            return
        if self.opts.dp > 1:  # this rank's own GPUs, before CUDA initialises
            os.environ["CUDA_VISIBLE_DEVICES"] = rank_gpus(self.local_rank, self.opts.tp)
        try:
            from vllm import LLM
        except ImportError as e:
            raise ConfigError(f"vllm backend: vllm is not installed ({e}); pip install 'vpbench[vllm]' on a "
                              "CUDA machine") from e
        from transformers import AutoTokenizer

        from vpbench.models.qwen_inputs import chat_renderer, load_chat_template

        tok = AutoTokenizer.from_pretrained(str(self.opts.path), local_files_only=True)
        self._render = chat_renderer(tok, load_chat_template(self.opts.path, tok))
        kwargs: dict[str, Any] = {"model": str(self.opts.path), "tensor_parallel_size": self.opts.tp,
                                  "gpu_memory_utilization": self.opts.gpu_memory_utilization,
                                  "limit_mm_per_prompt": {"video": 1, "image": 0}, "dtype": self.dtype,
                                  "enforce_eager": bool(self.opts.enforce_eager), "seed": 0}
        if self.opts.max_model_len:
            kwargs["max_model_len"] = self.opts.max_model_len
        if self.opts.mm_encoder_tp_mode != "weights":
            kwargs["mm_encoder_tp_mode"] = self.opts.mm_encoder_tp_mode
        self._llm = LLM(**kwargs)

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        from vllm import SamplingParams

        self.load()
        out: list[Response | None] = [None] * len(batch)
        items, params, where = [], [], []
        for i, p in enumerate(batch):
            try:
                items.append(build_vllm_input(p.request, p.frames, self._render))
            except ValueError as e:
                out[i] = Response(p.request.sample_id, "", error=str(e))
                continue
            params.append(SamplingParams(**sampling_kwargs(p.request)))
            where.append(i)
        results = self._llm.generate(items, params, use_tqdm=False) if items else []
        for i, r in zip(where, results, strict=True):
            c = r.outputs[0]
            out[i] = Response(batch[i].request.sample_id, c.text, n_input_tokens=len(r.prompt_token_ids or []),
                              n_output_tokens=len(c.token_ids), finish_reason=c.finish_reason)
        return [r for r in out if r is not None]


def _visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0


def _vllm_version() -> str:
    try:
        from importlib.metadata import version

        return version("vllm")
    except Exception:  # not installed: the fingerprint still names the backend
        return "not-installed"


def from_spec(arg: str, spec: str, options: Any) -> VLLMBackend:
    if options.device == "cpu":
        raise ConfigError("vllm backend: vLLM runs on CUDA GPUs only; use the hf backend with --device cpu")
    return VLLMBackend(VLLMOptions.parse(arg), batch_size=max(options.batch_or(8), 8), dtype=options.dtype)
