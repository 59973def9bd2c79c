"""Stage 1 of VideoPerceiver: SFT with intermediate-layer contrastive learning (RECIPE §2).

One readable recipe in the torchtune manner: ``setup() → train() → save → cleanup()``.

    L = L_sft + lambda_cl * (L_v2v + L_t2v + L_v2t)            (eq. 7, lambda_cl = 0.1)

Each micro-batch runs ONE call of ``SFTContrastiveModel`` (vpbench/train/model.py) holding both
passes: the SFT pass (chat sequence [V, prompt, answer], CE on answer tokens) and the contrastive
pass ([Z_v, eos, Z_v', eos, Z_t, eos] plus the SimCSE view [Z_v, eos], cut after block l).

Normalisation (so ``batch_size × grad_accum × processes`` is what matters, not its split):
* SFT: summed answer-token CE / the number of answer tokens of the WHOLE optimiser step (all
  micro-batches, all processes);
* contrastive: mean of the per-micro-batch InfoNCE terms. InfoNCE uses in-batch negatives, so it is
  NOT invariant to the split: negatives are the micro-batch of every process
  (``contrastive.gather_across_processes``), never other accumulation steps.

Optimiser: AdamW, groups {model, heads} × {decay, no decay} at ``lr_sft`` / ``lr_cl``, built from
the prepared model's parameters (survives DDP / FSDP use_orig_params / DeepSpeed ZeRO-2/3, which
get no optimizer block in their config). Gradient checkpointing is non-reentrant (the hooks that
read block l keep their graph). Logging: ``<output_dir>/metrics.jsonl`` always, plus TensorBoard
(``<output_dir>/tb``) when ``tensorboard`` is importable.

Run::

    python recipes/sft_contrastive.py --config recipes/configs/sft_contrastive/tiny.yaml --prepare-tiny
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 recipes/sft_contrastive.py --config ...   # DDP on CPU (gloo)
    accelerate launch --config_file recipes/configs/accelerate/deepspeed_zero2.yaml \\
        recipes/sft_contrastive.py --config recipes/configs/sft_contrastive/qwen2_5_vl_7b.yaml [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from vpbench.config import parse_assignments
from vpbench.train.config import SFTConfig, load_config
from vpbench.train.plumbing import MetricLogger, StepSampler, error_text, lr_lambda  # noqa: F401
from vpbench.train.plumbing import param_groups as _param_groups


def param_groups(model: torch.nn.Module, lr_sft: float, lr_cl: float, wd: float) -> list[dict[str, Any]]:
    """{model, heads} × {decay (>= 2-D weights), no decay} at ``lr_sft`` / ``lr_cl``; empty groups dropped."""
    return _param_groups(model, lr_sft, wd, head_lr=lr_cl, head_prefix="heads.")


class SFTContrastiveRecipe:
    def __init__(self, cfg: SFTConfig) -> None:
        self.cfg = cfg
        self.step = 0
        self.history: list[dict[str, float]] = []

    # -- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, set_seed
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        from vpbench.models.fast_vision import speed_up_vision_tower
        from vpbench.train.checkpoint import (check_fresh_start, check_resumable, load_checkpoint, read_trainer_state,
                                              resolve_resume)
        from vpbench.train.collate import collate_sft
        from vpbench.train.contrastive import SpecialIds
        from vpbench.train.data import SFTDataset
        from vpbench.train.manifest import manifest_sha256, read_manifest
        from vpbench.train.model import SFTContrastiveModel, enable_activation_checkpointing

        cfg, t = self.cfg, self.cfg.train
        self.accelerator = acc = Accelerator(gradient_accumulation_steps=t.grad_accum,
                                             mixed_precision=t.mixed_precision)
        set_seed(t.seed)  # python, numpy, torch (all devices): model-independent init of the heads
        self.out = Path(t.output_dir)
        if check_fresh_start(self.out, t.resume_from, t.overwrite) and acc.is_main_process:
            import shutil

            shutil.rmtree(self.out)  # train.overwrite=true: the earlier run goes
        acc.wait_for_everyone()
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.model.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model.path)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            cfg.model.path, dtype=dtype, attn_implementation=cfg.model.attn_implementation)
        speed_up_vision_tower(model)  # packed window attention, linear patch embedding: same values
        model.config.use_cache = False
        if cfg.model.gradient_checkpointing:
            enable_activation_checkpointing(model)
        if cfg.model.freeze_vision:
            model.model.visual.requires_grad_(False)
        self.ids = SpecialIds.from_model(model.config, self.tokenizer)
        wrapped = SFTContrastiveModel(model, cfg.contrastive, self.ids)
        self.use_cl = wrapped.active

        examples = read_manifest(cfg.data.manifest, cfg.data.video_root or None)
        self.manifest_hash = manifest_sha256(cfg.data.manifest)
        self.dataset = SFTDataset(examples, cfg.data, cfg.model.path, self.tokenizer, with_degraded=self.use_cl)
        if cfg.data.frame_cache_mb > 0 and acc.num_processes == 1:
            # decode the clips up front on every torch thread instead of one per first use (a broken clip fails
            # here, naming it); with several processes each rank keeps decoding its own shard as it goes
            self.dataset.prefill_frames(threads=torch.get_num_threads())
        self.collate = lambda exs: collate_sft(exs, self.ids, cfg.data.padding_side, self.use_cl)

        # optimiser groups from the prepared model (FSDP flattens params at prepare time);
        # DeepSpeed needs model, optimiser and scheduler in one prepare call, the scheduler built on the
        # raw AdamW (DeepSpeed's ZeRO optimiser is no torch Optimizer: LambdaLR would raise TypeError).
        o = cfg.optim
        schedule = lr_lambda(o.scheduler, o.warmup_steps, t.max_steps)
        if acc.distributed_type == DistributedType.DEEPSPEED:
            acc.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = t.batch_size
            opt = torch.optim.AdamW(param_groups(wrapped, o.lr_sft, o.lr_cl, o.weight_decay), betas=tuple(o.betas),
                                    eps=o.eps)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
            # prepare() registers the scheduler for save/load_state; train() steps the raw LambdaLR once per
            # optimiser step (accelerate's wrapper would step it num_processes times)
            self.model, self.optimizer, _ = acc.prepare(wrapped, opt, self.scheduler)
        else:
            self.model = acc.prepare(wrapped)
            opt = torch.optim.AdamW(param_groups(self.model, o.lr_sft, o.lr_cl, o.weight_decay),
                                    betas=tuple(o.betas), eps=o.eps)
            self.optimizer = acc.prepare(opt)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.optimizer, schedule)
            acc.register_for_checkpointing(self.scheduler)

        ckpt = resolve_resume(self.out, t.resume_from)
        if ckpt is not None:
            check_resumable(read_trainer_state(ckpt), cfg.to_dict(), self.manifest_hash, ckpt)
            state = load_checkpoint(acc, ckpt)
            self.step = int(state["step"])
            acc.print(f"resumed from {ckpt} at step {self.step}")
        self.logger = MetricLogger(self.out, acc.is_main_process, self.step)
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
            acc.print(f"logging to {self.logger.path}" + (" and TensorBoard" if self.logger.tb else
                                                           " (tensorboard not installed: JSONL only)"))

    def _batches(self) -> Iterator[Any]:
        t, acc = self.cfg.train, self.accelerator
        sampler = StepSampler(len(self.dataset), t.seed, self.cfg.data.shuffle, t.batch_size, t.grad_accum,
                              acc.num_processes, acc.process_index, self.step, t.max_steps)
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=t.batch_size, sampler=sampler,
                                             collate_fn=self.collate, num_workers=self.cfg.data.num_workers,
                                             # own generator: creating the iterator must not draw from the
                                             # global RNG (dropout after a resume would shift)
                                             generator=torch.Generator().manual_seed(t.seed + self.step))
        return iter(loader)

    # -- train ---------------------------------------------------------------------------------
    def train(self) -> list[dict[str, float]]:
        cfg, t, acc = self.cfg, self.cfg.train, self.accelerator
        self.model.train()
        batches = self._batches()
        world = acc.num_processes
        cl_world = world if cfg.contrastive.gather_across_processes else 1
        while self.step < t.max_steps:
            t0 = time.perf_counter()
            micro = [next(batches).to(acc.device) for _ in range(t.grad_accum)]
            n_tok = acc.reduce(torch.tensor(float(sum(b.n_answer_tokens for b in micro)), device=acc.device),
                               reduction="sum").item()
            sums = {"sft_sum": 0.0, "v2v": 0.0, "t2v": 0.0, "v2t": 0.0}
            for b in micro:
                with acc.accumulate(self.model):
                    out = self.model(b, sft_norm=max(n_tok, 1.0) / world, cl_scale=cl_world / t.grad_accum)
                    # accelerate (and DeepSpeed) divide by grad_accum: undo it, the losses are pre-normalised
                    acc.backward(out["loss"] * t.grad_accum)
                    grad_norm = None
                    if acc.sync_gradients and cfg.optim.max_grad_norm:
                        grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.optim.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                for k in sums:
                    if k in out:
                        sums[k] += float(out[k])
            self.scheduler.step()
            self.step += 1
            self._log(sums, n_tok, grad_norm, time.perf_counter() - t0)
            if t.save_every and self.step % t.save_every == 0 and self.step < t.max_steps:
                self.save_checkpoint()
        return self.history

    def _log(self, sums: dict[str, float], n_tok: float, grad_norm: Any, dt: float) -> None:
        acc, t = self.accelerator, self.cfg.train
        red = acc.reduce(torch.tensor([sums[k] for k in ("sft_sum", "v2v", "t2v", "v2t")], device=acc.device),
                         reduction="sum").tolist()
        vals = {"sft": red[0] / max(n_tok, 1.0)}
        if self.use_cl:
            denom = t.grad_accum * acc.num_processes
            vals.update({k: red[i + 1] / denom for i, k in enumerate(("v2v", "t2v", "v2t"))})
            vals["contrastive"] = vals["v2v"] + vals["t2v"] + vals["v2t"]
        vals["loss"] = vals["sft"] + (self.cfg.contrastive.weight * vals["contrastive"] if self.use_cl else 0.0)
        for g in self.optimizer.param_groups:
            vals[f"lr_{g.get('name', 'group')}"] = float(g["lr"])
        if grad_norm is not None:
            vals["grad_norm"] = float(grad_norm)
        vals.update({"answer_tokens": n_tok, "step_time_s": dt})
        self.history.append(vals)
        if self.step % max(1, t.log_every) == 0 or self.step == t.max_steps:
            self.logger.log(self.step, vals)
            acc.print(f"step {self.step}/{t.max_steps} " + " ".join(
                f"{k}={vals[k]:.4f}" for k in ("loss", "sft", "v2v", "t2v", "v2t") if k in vals))

    # -- save ----------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        from vpbench.provenance import environment

        return {"config": self.cfg.to_dict(), "manifest_sha256": self.manifest_hash, "provenance": environment(),
                "recipe": "recipes/sft_contrastive.py"}

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


def prepare_tiny(cfg: SFTConfig) -> None:
    """Build the tiny random model and the synthetic manifest named by the config if absent."""
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.manifest import synth_sft_manifest

    if not (Path(cfg.model.path) / "config.json").is_file():
        build_tiny_qwen(Path(cfg.model.path), seed=cfg.train.seed, overwrite=True)
    manifest = Path(cfg.data.manifest)
    if not manifest.is_file():
        made = synth_sft_manifest(manifest.parent, n_clips=8, seed=cfg.train.seed)
        if made != manifest:
            made.rename(manifest)


def run(cfg: SFTConfig, *, save: bool = True) -> SFTContrastiveRecipe:
    """setup → train → checkpoint → export. A resumed run that already reached ``max_steps`` and
    has its export does nothing more (re-running a finished command is a no-op that says so)."""
    recipe = SFTContrastiveRecipe(cfg)
    recipe.setup()
    export_dir = recipe.out / "export"
    finished = recipe.step >= cfg.train.max_steps and (not cfg.train.export or (export_dir / "config.json").is_file())
    if finished:
        recipe.accelerator.print(f"already trained to step {recipe.step} (train.max_steps={cfg.train.max_steps}): "
                                 f"nothing to do; raise train.max_steps to continue")
    else:
        recipe.train()
        if save:
            recipe.save_checkpoint()
            if cfg.train.export:
                recipe.export()
    if save and cfg.train.export:
        recipe.accelerator.print(f"exported model: {export_dir.resolve()} (evaluate: vpbench run --model "
                                 f"{export_dir} ...)")
    recipe.cleanup()
    return recipe


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry. Returns 0, or the error's exit code (2) after printing a ``VpbenchError`` (bad
    config, manifest or data: the message names the file / record and the fix) without a traceback."""
    from vpbench.errors import VpbenchError

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="recipe YAML (recipes/configs/sft_contrastive/*.yaml)")
    ap.add_argument("--prepare-tiny", action="store_true", help="build the tiny model + synthetic data if absent")
    ap.add_argument("overrides", nargs="*", help="section.key=value, e.g. contrastive.blocks=[12,16]")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cfg = load_config(args.config, parse_assignments(args.overrides))
        if args.prepare_tiny:
            prepare_tiny(cfg)
        run(cfg)
    except VpbenchError as e:
        print(f"sft_contrastive: error: {error_text(e)}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
