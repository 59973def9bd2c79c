"""Rollouts behind one small interface: ``generate(prompt_ids, video, n, seed) -> n completions``.

A completion is a list of new token ids, cut after the first eos (kept) or at ``max_new_tokens``.

* ``HFRollout``: transformers ``generate`` on the policy held in memory (CPU or GPU; the module
  the optimiser updates, so no reload from disk per step), sampling under a forked RNG seeded per
  call (a run is reproducible and a resumed run samples what the uninterrupted one did).
* ``VLLMRollout``: vLLM colocated with training (``pip install 'vpbench[vllm]'``); the policy's
  weights are pushed into the engine by ``sync(model)`` before each step's rollouts. vLLM takes the
  sampled frames themselves (the same frames, resized by its own Qwen2.5-VL processor under the
  same pixel budget), so its visual tokens equal the trainer's.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from vpbench.errors import ConfigError
from vpbench.train.rl_data import VideoInput


class Rollout(Protocol):
    def generate(self, prompt_ids: Sequence[int], video: VideoInput, n: int, seed: int) -> list[list[int]]: ...

    def sync(self, model: Any) -> None: ...


def cut_at_eos(row: Sequence[int], eos_ids: Sequence[int]) -> list[int]:
    out = []
    for t in row:
        out.append(int(t))
        if t in eos_ids:
            break
    return out


def video_tensors(video: VideoInput, n: int, device: Any, dtype: Any) -> dict[str, Any]:
    """``pixel_values_videos`` [n·N, D], ``video_grid_thw`` [n, 3], ``second_per_grid_ts`` [n]: one
    copy of ``video`` per row."""
    import torch

    pv = torch.from_numpy(video.pixel_values).to(device, dtype)
    grid = torch.from_numpy(video.grid).to(device)
    return {"pixel_values_videos": pv.repeat(n, 1), "video_grid_thw": grid.repeat(n, 1),
            "second_per_grid_ts": torch.full((n,), float(video.second_per_grid_t), device=device)}


def vision_token_ids(config: Any) -> list[int]:
    """Vision placeholder ids (a sampled one would break the completion's forward): never generated."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "vision_token_id")
    return sorted({int(getattr(config, k)) for k in names if getattr(config, k, None) is not None})


class HFRollout:
    """Sampling with ``model.generate`` (``model``: the unwrapped policy, updated in place by training)."""

    def __init__(self, model: Any, eos_ids: Sequence[int], pad_id: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0) -> None:
        self.model, self.eos_ids, self.pad_id = model, tuple(int(e) for e in eos_ids), int(pad_id)
        self.suppress = vision_token_ids(model.config)
        self.max_new_tokens, self.temperature, self.top_p, self.top_k = max_new_tokens, temperature, top_p, top_k

    def sync(self, model: Any) -> None:
        self.model = model  # the same module: nothing to copy

    def generate(self, prompt_ids: Sequence[int], video: VideoInput, n: int, seed: int) -> list[list[int]]:
        import torch
        from transformers import GenerationConfig

        from vpbench.models.qwen_inputs import mm_token_type_ids, takes_mm_token_type_ids
        from vpbench.train.contrastive import inner_model

        m = self.model
        dev, dtype = next(m.parameters()).device, next(m.parameters()).dtype
        ids = torch.tensor([list(prompt_ids)] * n, dtype=torch.long, device=dev)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), **video_tensors(video, n, dev, dtype)}
        if takes_mm_token_type_ids(inner_model(m)):
            inputs["mm_token_type_ids"] = mm_token_type_ids(ids, m.config.video_token_id, m.config.image_token_id)
        gc = GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=True, temperature=self.temperature,
                              top_p=self.top_p, top_k=self.top_k, num_beams=1, eos_token_id=list(self.eos_ids),
                              pad_token_id=self.pad_id, use_cache=True, suppress_tokens=self.suppress)
        was_training = m.training
        m.eval()
        devices = [dev.index or 0] if dev.type == "cuda" else []
        try:
            with torch.inference_mode(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(seed))
                out = m.generate(**inputs, generation_config=gc)
        finally:
            m.train(was_training)
        return [cut_at_eos(row.tolist(), self.eos_ids) for row in out[:, ids.shape[1]:].cpu()]


class VLLMRollout:
    """vLLM colocated on the training GPUs (one engine per process, ``external_launcher`` when
    distributed). ``sync(model)`` loads the policy's current weights into the engine."""

    def __init__(self, model_dir: str, tokenizer: Any, video_token_id: int, max_new_tokens: int,
                 temperature: float = 1.0, top_p: float = 1.0, gpu_memory_utilization: float = 0.3,
                 tensor_parallel_size: int = 1, max_model_len: int = 16384, seed: int = 0,
                 mm_processor_kwargs: dict[str, Any] | None = None, distributed: bool = False) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise ConfigError("rollout.backend=vllm needs vLLM: pip install 'vpbench[vllm]' (CUDA only), or set "
                              "rollout.backend=hf") from e
        self.tokenizer, self.video_token_id = tokenizer, int(video_token_id)
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.mm_kwargs = dict(mm_processor_kwargs or {})
        self.llm = LLM(model=str(model_dir), gpu_memory_utilization=gpu_memory_utilization,
                       tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len, seed=seed,
                       limit_mm_per_prompt={"video": 1, "image": 0}, enable_prefix_caching=False,
                       distributed_executor_backend="external_launcher" if distributed else None)

    def _engine_model(self) -> Any:
        executor = self.llm.llm_engine.model_executor
        worker = executor.driver_worker
        worker = getattr(worker, "worker", worker)  # vLLM V1 wraps the worker
        return worker.model_runner.model

    def sync(self, model: Any) -> None:
        """Push the policy's parameters (names as in the HF checkpoint) into the engine."""
        state = model.state_dict()
        self._engine_model().load_weights(weights=list(state.items()))
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()

    def prompt_text(self, prompt_ids: Sequence[int]) -> str:
        """The chat prompt with the expanded video pads collapsed back to one placeholder."""
        ids: list[int] = []
        for t in prompt_ids:
            if not (t == self.video_token_id and ids and ids[-1] == self.video_token_id):
                ids.append(int(t))
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def generate(self, prompt_ids: Sequence[int], video: VideoInput, n: int, seed: int) -> list[list[int]]:
        from vllm import SamplingParams

        params = SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens,
                                seed=int(seed))
        fps = 2.0 / float(video.second_per_grid_t)  # temporal_patch_size / second_per_grid_t
        req = {"prompt": self.prompt_text(prompt_ids), "multi_modal_data": {"video": video.frames},
               "mm_processor_kwargs": {"fps": fps, **self.mm_kwargs}}
        out = self.llm.generate([req], params, use_tqdm=False)
        return [list(c.token_ids) for c in out[0].outputs]
