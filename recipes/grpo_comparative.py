"""Stage 2 of VideoPerceiver: Comparative GRPO with the quality comparator and refeed (RECIPE §3).

One readable recipe in the shape of ``sft_contrastive.py``: ``setup() → train() → save → cleanup()``.
Per step, for each of ``train.batch_size`` prompts x (reference y) of this process:

    o'_1..o'_G ~ π(· | x, V')     degraded clip V' (same frames, key frames replaced); scored, never trained
    o_1..o_G   ~ π(· | x, V)      full clip; refeed x ← x + instruction while mean r_c ≤ 0 (≤ max_refeed)
    r_c,i  = Q(o_i, y) - Q(o'_i, y)                                 (eq. 8)
    A_c,i  = r_c,i - b,   b ← 0.9·b + 0.1·mean_batch(r_c) after use  (eq. 9)
    A_i    = (r_i - mean_G r) / (std_G r + 1e-4) + λ_c·A_c,i          (eq. 10; r = Q + w·format)
    L      = Σ_tokens [-min(ρ·A, clip(ρ, 1±ε)·A) + β·k3(π, π_ref)] / n_tokens(step, all processes)

Prompts whose gap never turned positive (refeed on) train nothing. Shapes: a group is G sequences
[prompt + completion] (right-padded) with the clip repeated G times; log-probs [G, T]. The pieces
are pure functions in ``vpbench/train/`` (advantages, rewards, nli, grpo_loss, rollouts, grpo_step).

Run::

    python recipes/grpo_comparative.py --config recipes/configs/grpo_comparative/tiny.yaml --prepare-tiny
    accelerate launch --config_file recipes/configs/accelerate/deepspeed_zero3.yaml \\
        recipes/grpo_comparative.py --config recipes/configs/grpo_comparative/qwen2_5_vl_7b.yaml [key=value ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vpbench.config import parse_assignments
from vpbench.train.grpo_config import RESUME_SECTIONS, GRPOConfig, load_grpo_config
from vpbench.train.plumbing import MetricLogger, StepSampler, error_text, lr_lambda, param_groups


class GRPOComparativeRecipe:
    def __init__(self, cfg: GRPOConfig) -> None:
        self.cfg = cfg
        self.step = 0
        self.history: list[dict[str, float]] = []

    # -- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, set_seed
        from transformers import AutoTokenizer

        from vpbench.errors import ConfigError
        from vpbench.train.advantages import EMABaseline
        from vpbench.train.checkpoint import check_resumable, load_checkpoint, read_trainer_state, resolve_resume
        from vpbench.train.grpo_step import PolicyLogprobs
        from vpbench.train.manifest import manifest_sha256
        from vpbench.train.rl_data import RLDataset, read_rl_manifest
        from vpbench.train.rewards import FormatReward, QualityScorer

        cfg, t = self.cfg, self.cfg.train
        # one micro-batch per prompt group: accumulate over the step's groups (DeepSpeed steps at the boundary)
        self.accelerator = acc = Accelerator(gradient_accumulation_steps=t.batch_size, mixed_precision=t.mixed_precision)
        set_seed(t.seed)
        if t.torch_threads:
            torch.set_num_threads(t.torch_threads)
        self.out = Path(t.output_dir)
        examples = read_rl_manifest(cfg.data.manifest, cfg.data.video_root or None)  # data errors before model loads
        if not (Path(cfg.model.path) / "config.json").is_file():
            raise ConfigError(f"model.path={cfg.model.path!r} is not a Qwen2.5-VL checkpoint dir (no config.json); pass "
                              "the stage-1 export (<output_dir>/export) or any local Qwen2.5-VL checkpoint")
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model.path)
        policy = self._load_model(trainable=True)
        self.ref = self._load_model(trainable=False).to(acc.device) if cfg.grpo.beta else None
        self.eos_ids = self._eos_ids(policy)
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0])

        self.manifest_hash = manifest_sha256(cfg.data.manifest)
        self.dataset = RLDataset(examples, cfg.data, cfg.model.path, self.tokenizer, cfg.grpo.refeed_instruction,
                                 shuffled=cfg.grpo.comparator == "tgrpo", seed=t.seed)
        self.quality = QualityScorer.from_config(cfg.quality)
        self.format = FormatReward(self.quality, cfg.quality.min_chars, cfg.quality.max_chars)
        self.baseline = EMABaseline(cfg.grpo.ema_momentum)

        o = cfg.optim
        updates = t.max_steps * cfg.grpo.num_iterations
        schedule = lr_lambda(o.scheduler, o.warmup_steps, updates)
        wrapped = PolicyLogprobs(policy)
        if acc.distributed_type == DistributedType.DEEPSPEED:
            acc.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
            acc.state.deepspeed_plugin.deepspeed_config["gradient_accumulation_steps"] = t.batch_size  # one group each
            opt = torch.optim.AdamW(param_groups(wrapped, o.lr, o.weight_decay), betas=tuple(o.betas), eps=o.eps)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
            self.model, self.optimizer, _ = acc.prepare(wrapped, opt, self.scheduler)
        else:
            self.model = acc.prepare(wrapped)
            opt = torch.optim.AdamW(param_groups(self.model, o.lr, o.weight_decay), betas=tuple(o.betas), eps=o.eps)
            self.optimizer = acc.prepare(opt)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.optimizer, schedule)
            acc.register_for_checkpointing(self.scheduler)
        acc.register_for_checkpointing(self.baseline)
        self.rollout = self._rollout()

        ckpt = resolve_resume(self.out, t.resume_from)
        if ckpt is not None:
            check_resumable(read_trainer_state(ckpt), cfg.to_dict(), self.manifest_hash, ckpt, RESUME_SECTIONS)
            self.step = int(load_checkpoint(acc, ckpt)["step"])
            acc.print(f"resumed from {ckpt} at step {self.step} (baseline b={self.baseline.value:.6f})")
        self.logger = MetricLogger(self.out, acc.is_main_process, self.step)
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    def _load_model(self, trainable: bool) -> Any:
        from transformers import Qwen2_5_VLForConditionalGeneration

        from vpbench.models.fast_vision import speed_up_vision_tower
        from vpbench.train.model import enable_activation_checkpointing

        m = self.cfg.model
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[m.dtype]
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(m.path, dtype=dtype,
                                                                   attn_implementation=m.attn_implementation)
        speed_up_vision_tower(model)  # packed window attention, linear patch embedding: same values
        if not trainable:
            return model.requires_grad_(False).eval()
        model.config.use_cache = False
        if m.gradient_checkpointing:
            enable_activation_checkpointing(model)
        if m.freeze_vision:
            model.model.visual.requires_grad_(False)
        return model

    def _eos_ids(self, model: Any) -> tuple[int, ...]:
        eos: list[int] = []
        for v in (model.generation_config.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")):
            for i in v if isinstance(v, (list, tuple)) else [v]:
                if i is not None and int(i) not in eos:
                    eos.append(int(i))
        return tuple(eos)

    def _rollout(self) -> Any:
        from vpbench.train.rollouts import HFRollout, VLLMRollout

        r, acc = self.cfg.rollout, self.accelerator
        if r.backend == "hf":
            return HFRollout(self.policy, self.eos_ids, self.pad_id, r.max_new_tokens, r.temperature, r.top_p, r.top_k)
        d = self.cfg.data
        return VLLMRollout(self.cfg.model.path, self.tokenizer, self.policy.config.video_token_id, r.max_new_tokens,
                           r.temperature, r.top_p, r.vllm_gpu_memory_utilization, r.vllm_tensor_parallel_size,
                           r.vllm_max_model_len, seed=self.cfg.train.seed + acc.process_index,
                           mm_processor_kwargs={"min_pixels": d.min_pixels, "max_pixels": d.max_pixels},
                           distributed=acc.num_processes > 1)

    @property
    def policy(self) -> Any:
        return self.accelerator.unwrap_model(self.model).model

    # -- train ---------------------------------------------------------------------------------
    def _gathered_for_generation(self) -> Any:
        """ZeRO-3 / FSDP shard parameters: gather them while sampling (hf) or pushing them into vLLM."""
        from accelerate.utils import DistributedType

        acc = self.accelerator
        if acc.distributed_type == DistributedType.DEEPSPEED:
            if acc.state.deepspeed_plugin.zero_stage == 3:
                import deepspeed

                return deepspeed.zero.GatheredParameters(list(self.policy.parameters()))
        if acc.distributed_type == DistributedType.FSDP:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

            return FSDP.summon_full_params(self.model, writeback=False, recurse=True)
        return contextlib.nullcontext()

    def collect(self) -> list[Any]:
        from vpbench.train.grpo_step import collect_group

        cfg, t, acc = self.cfg, self.cfg.train, self.accelerator
        sampler = StepSampler(len(self.dataset), t.seed, cfg.data.shuffle, t.batch_size, 1, acc.num_processes,
                              acc.process_index, self.step, t.max_steps)
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        groups = []
        with self._gathered_for_generation():
            self.rollout.sync(self.policy)
            for j, i in enumerate(sampler.indices(self.step)):
                index = (self.step * acc.num_processes + acc.process_index) * t.batch_size + j
                groups.append(collect_group(self.dataset[i], index, self.step, self.rollout, decode, self.quality,
                                            self.format, cfg.grpo, cfg.quality.format_weight, t.seed))
        return groups

    def advantages(self, groups: list[Any]) -> tuple[torch.Tensor, float]:
        """A [P, G] of this process's groups, the baseline b used, then b updated with the batch
        mean of r_c over every process (eq. 9: updated after use)."""
        from vpbench.train.advantages import combined_advantages, group_advantages

        g, acc = self.cfg.grpo, self.accelerator
        rewards = torch.tensor([gr.rewards for gr in groups], dtype=torch.float64)
        a_base = group_advantages(rewards, g.adv_eps, g.scale_rewards)
        b = self.baseline.value
        trainable = torch.tensor([gr.trainable for gr in groups])
        if g.comparator == "comparative":
            r_c = torch.tensor([gr.r_c for gr in groups], dtype=torch.float64)
            adv = combined_advantages(a_base, r_c, b, g.lambda_c, trainable)
            sums = acc.reduce(torch.tensor([float(r_c.sum()), float(r_c.numel())], dtype=torch.float64,
                                           device=acc.device), reduction="sum")
            self.baseline.update(float(sums[0] / sums[1]))
        else:
            adv = a_base * trainable[:, None].to(a_base.dtype)
        return adv, b

    def train(self) -> list[dict[str, float]]:
        from vpbench.train.grpo_step import token_batch

        cfg, t, acc = self.cfg, self.cfg.train, self.accelerator
        self.model.train()
        dtype = next(self.policy.parameters()).dtype
        while self.step < t.max_steps:
            t0 = time.perf_counter()
            groups = self.collect()
            t_roll = time.perf_counter() - t0
            adv, b_used = self.advantages(groups)
            batches = [token_batch(gr, adv[k].float(), self.pad_id, acc.device, dtype) for k, gr in enumerate(groups)]
            n_tok = acc.reduce(torch.tensor(float(sum(int(x.completion_mask.sum()) for x in batches if x.weight)),
                                            device=acc.device), reduction="sum").item()
            old = self._old_logprobs(batches) if cfg.grpo.num_iterations > 1 else None
            stats = {}
            for _ in range(cfg.grpo.num_iterations):
                stats, grad_norm = self._update(batches, old, max(n_tok, 1.0) / acc.num_processes)
            self.step += 1
            self._log(groups, adv, b_used, stats, grad_norm, n_tok, t_roll, time.perf_counter() - t0)
            if t.save_every and self.step % t.save_every == 0 and self.step < t.max_steps:
                self.save_checkpoint()
        return self.history

    def _ref_logprobs(self, b: Any) -> torch.Tensor | None:
        if self.ref is None:
            return None
        from vpbench.train.grpo_step import PolicyLogprobs

        with torch.no_grad(), self.accelerator.autocast():
            return PolicyLogprobs(self.ref)(b)

    def _old_logprobs(self, batches: list[Any]) -> list[torch.Tensor]:
        with torch.no_grad(), self.accelerator.autocast():
            return [self.model(b).detach() for b in batches]

    def _update(self, batches: list[Any], old: list[torch.Tensor] | None, norm: float) -> tuple[dict[str, float], Any]:
        from vpbench.train.grpo_loss import grpo_loss

        g, acc = self.cfg.grpo, self.accelerator
        sums = {"tokens": 0.0, "kl_sum": 0.0, "clipped_sum": 0.0, "loss": 0.0}
        grad_norm = None
        for k, b in enumerate(batches):
            ref = self._ref_logprobs(b)
            with acc.accumulate(self.model):
                logp = self.model(b)
                loss, st = grpo_loss(logp, logp.detach() if old is None else old[k], ref, b.advantages,
                                     b.completion_mask, epsilon=g.epsilon, epsilon_high=g.epsilon_high, beta=g.beta,
                                     n_tokens=norm)
                loss = loss * b.weight
                acc.backward(loss * len(batches))  # accelerate divides by the accumulation count: undo it
                if acc.sync_gradients and self.cfg.optim.max_grad_norm:
                    grad_norm = acc.clip_grad_norm_(self.model.parameters(), self.cfg.optim.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            if b.weight:
                for key in ("tokens", "kl_sum", "clipped_sum"):
                    sums[key] += float(st[key])
            sums["loss"] += float(loss.detach())
        self.scheduler.step()
        return sums, grad_norm

    def _log(self, groups: list[Any], adv: torch.Tensor, b_used: float, sums: dict[str, float], grad_norm: Any,
             n_tok: float, t_roll: float, dt: float) -> None:
        from accelerate.utils import gather_object

        acc, t, g = self.accelerator, self.cfg.train, self.cfg.grpo
        rows = gather_object([{"q": gr.q_full, "q_ref": gr.q_ref, "r": gr.rewards, "r_c": gr.r_c,
                               "refeeds": gr.refeeds, "trainable": gr.trainable, "gen": gr.gen_tokens,
                               "len": [len(c) for c in gr.completions]} for gr in groups])
        red = acc.reduce(torch.tensor([sums["loss"], sums["tokens"], sums["kl_sum"], sums["clipped_sum"], t_roll],
                                      dtype=torch.float64, device=acc.device), reduction="sum").tolist()
        flat = lambda key: [v for r in rows for v in r[key]]  # noqa: E731
        vals: dict[str, float] = {"loss": red[0], "reward": float(np.mean(flat("r"))), "q_full": float(np.mean(flat("q")))}
        if g.comparator != "none":
            vals["q_" + ("degraded" if g.comparator == "comparative" else "shuffled")] = float(np.mean(flat("q_ref")))
        if g.comparator == "comparative":
            rc = np.array(flat("r_c"))
            needed = [r for r in rows if r["refeeds"]]
            vals.update({"r_c_mean": float(rc.mean()), "r_c_std": float(rc.std()), "r_c_min": float(rc.min()),
                         "r_c_max": float(rc.max()), "r_c_pos_frac": float((rc > 0).mean()), "baseline": b_used,
                         "baseline_next": self.baseline.value, "refeed_count": float(sum(r["refeeds"] for r in rows)),
                         "refeed_prompts": float(len(needed)),
                         "refeed_success_rate": (float(np.mean([r["trainable"] for r in needed])) if needed
                                                 else float("nan"))})
        vals.update({"trainable_frac": float(np.mean([r["trainable"] for r in rows])),
                     "adv_abs_mean": float(adv.abs().mean()),
                     "kl": red[2] / max(red[1], 1.0), "clip_frac": red[3] / max(red[1], 1.0),
                     "completion_len": float(np.mean(flat("len"))), "trained_tokens": n_tok,
                     "tokens_per_s": sum(r["gen"] for r in rows) / max(red[4] / acc.num_processes, 1e-9),
                     "lr": float(self.optimizer.param_groups[0]["lr"]), "step_time_s": dt})
        if grad_norm is not None:
            vals["grad_norm"] = float(grad_norm)
        self.history.append(vals)
        if self.step % max(1, t.log_every) == 0 or self.step == t.max_steps:
            self.logger.log(self.step, vals)
            acc.print(f"step {self.step}/{t.max_steps} " + " ".join(
                f"{k}={vals[k]:.4f}" for k in ("loss", "reward", "r_c_mean", "baseline", "kl", "refeed_count")
                if k in vals))

    # -- save ----------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        from vpbench.provenance import environment

        return {"config": self.cfg.to_dict(), "manifest_sha256": self.manifest_hash, "provenance": environment(),
                "recipe": "recipes/grpo_comparative.py", "stage": 2, "baseline": self.baseline.state_dict(),
                "start_model": str(self.cfg.model.path)}

    def save_checkpoint(self) -> Path:
        from vpbench.train.checkpoint import save_checkpoint

        return save_checkpoint(self.accelerator, self.out, self.step, self._state())

    def export(self) -> Path:
        from vpbench.train.checkpoint import export_pretrained

        return export_pretrained(self.accelerator, self.model, self.cfg.model.path, self.out / "export",
                                 {**self._state(), "step": self.step})

    def cleanup(self) -> None:
        self.logger.close()
        self.accelerator.end_training()


def prepare_tiny(cfg: GRPOConfig) -> None:
    """Build what the tiny config names if absent: the stage-1 tiny export (tiny random model →
    ``recipes/sft_contrastive.py`` tiny run), generated MotionBench data crafted into an RL manifest
    under the config's sampling protocol, and a tiny random NLI checkpoint."""
    import importlib.util

    from vpbench.craft.pipeline import load_craft_config, run_craft
    from vpbench.resources import recipes_dir
    from vpbench.train.config import load_config
    from vpbench.train.nli import build_tiny_nli

    recipes = recipes_dir()

    model = Path(cfg.model.path)
    if not (model / "config.json").is_file():
        spec = importlib.util.spec_from_file_location("sft_contrastive_recipe", recipes / "sft_contrastive.py")
        sft = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sft)  # type: ignore[union-attr]
        base = model.parent  # <stage-1 output_dir>/export
        scfg = load_config(recipes / "configs/sft_contrastive/tiny.yaml", {
            "model.path": str(base.parent / "model"), "data.manifest": str(base.parent / "data" / "manifest.jsonl"),
            "train.output_dir": str(base), "train.save_every": 0})
        sft.prepare_tiny(scfg)
        sft.run(scfg)
    manifest = Path(cfg.data.manifest)
    if not manifest.is_file():
        from vpbench.synth.motionbench import synth_motionbench

        root = manifest.parent / "synth_motionbench"
        if not root.is_dir():
            synth_motionbench(root, seed=cfg.train.seed, n_videos=6)
        d = cfg.data
        craft = load_craft_config(recipes / "configs/craft/synthetic.yaml", {
            "input.root": str(root), "output.dir": str(manifest.parent), "protocol.fps": d.fps,
            "protocol.max_frames": d.max_frames, "protocol.min_frames": d.min_frames,
            "protocol.min_pixels": d.min_pixels, "protocol.max_pixels": d.max_pixels})
        run_craft(craft)
        if manifest.name != "rl.jsonl" and (manifest.parent / "rl.jsonl").is_file():
            (manifest.parent / "rl.jsonl").rename(manifest)
    if cfg.quality.nli_model and not (Path(cfg.quality.nli_model) / "config.json").is_file():
        build_tiny_nli(cfg.quality.nli_model, seed=cfg.train.seed)


def run(cfg: GRPOConfig, *, save: bool = True) -> GRPOComparativeRecipe:
    recipe = GRPOComparativeRecipe(cfg)
    recipe.setup()
    recipe.train()
    if save:
        recipe.save_checkpoint()
        if cfg.train.export:
            recipe.accelerator.print(f"export (a plain Qwen2.5-VL dir for `vpbench run --model`): {recipe.export()}")
    recipe.cleanup()
    return recipe


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry. Returns 0, or the error's exit code (2) after printing a ``VpbenchError`` (bad
    config, manifest or data: the message names the file / record and the fix) without a traceback."""
    from vpbench.errors import VpbenchError

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="recipe YAML (recipes/configs/grpo_comparative/*.yaml)")
    ap.add_argument("--prepare-tiny", action="store_true",
                    help="build the stage-1 tiny export, the crafted RL manifest and the tiny NLI model if absent")
    ap.add_argument("overrides", nargs="*", help="section.key=value, e.g. grpo.lambda_c=0 grpo.refeed=false")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cfg = load_grpo_config(args.config, parse_assignments(args.overrides))
        if args.prepare_tiny:
            prepare_tiny(cfg)
        run(cfg)
    except VpbenchError as e:
        print(f"grpo_comparative: error: {error_text(e)}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
