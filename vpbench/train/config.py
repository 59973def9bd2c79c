"""Configuration of the stage-1 recipe (SFT + intermediate-layer contrastive learning).

Loaded strictly from YAML (``load_config(path, overrides)``): unknown keys fail with a
"did you mean", values are typed, ``key=value`` overrides use dotted paths
(``contrastive.blocks=[12,16]``, ``optim.lr_sft=2e-5``). Defaults are RECIPE §2.

Ablation switches: ``contrastive.enabled=false`` (Ablation B); ``data.scorer=random`` with
``data.key_frames=scorer`` (Ablation A); ``contrastive.blocks`` (Table 6, one block or a list,
losses averaged); ``data.fps`` / ``data.nframes`` (Table 6 frame rate).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vpbench.errors import ConfigError
from vpbench.train.configio import apply_overrides as _apply_overrides
from vpbench.train.configio import load_sectioned, plain, sectioned_from_mapping


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # local HF Qwen2.5-VL checkpoint dir
    dtype: str = "float32"  # float32 | bfloat16 | float16 (load dtype)
    attn_implementation: str = "sdpa"  # eager | sdpa (a 4D block mask is needed: no flash_attention_2)
    gradient_checkpointing: bool = False  # always non-reentrant (hooks keep their graph)
    freeze_vision: bool = False  # freeze model.visual (the merger included)

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"model.dtype must be float32|bfloat16|float16, got {self.dtype!r}")
        if self.attn_implementation not in ("eager", "sdpa"):
            raise ConfigError(f"model.attn_implementation must be eager|sdpa (the contrastive pass passes a 4D "
                              f"block mask), got {self.attn_implementation!r}")


@dataclass(frozen=True)
class DataConfig:
    manifest: str = ""  # JSONL SFT manifest (vpbench.train.manifest)
    video_root: str = ""  # relative video paths resolve against this (default: the manifest's dir)
    fps: float | None = 2.0  # frame sampling (vpbench Protocol); exactly one of fps / nframes
    nframes: int | None = None
    min_frames: int = 4
    max_frames: int = 768
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    total_pixels: int = int(128000 * 28 * 28 * 0.9)
    key_frames: str = "auto"  # auto (manifest if given, else scorer) | manifest | scorer
    scorer: str = "blip2"  # blip2 | clip | random (Ablation A) | motion_energy
    scorer_options: dict[str, Any] = field(default_factory=dict)
    min_prominence: float = 0.0
    max_key_ratio: float = 1.0
    keyword_separator: str = ", "  # Z_t = separator.join(keywords)
    padding_side: str = "right"
    max_length: int = 32768  # longer SFT sequences raise DataError
    shuffle: bool = True
    num_workers: int = 0
    # decoded clips kept in memory (LRU, MiB, per DataLoader worker): records that share a clip, and later
    # epochs, skip decoding (exact: decoding is deterministic). 0 = off (full-size clips rarely repeat in a window)
    frame_cache_mb: float = 0.0

    def __post_init__(self) -> None:
        if self.frame_cache_mb < 0:
            raise ConfigError(f"data.frame_cache_mb must be >= 0 (0 = off), got {self.frame_cache_mb}")
        if self.key_frames not in ("auto", "manifest", "scorer"):
            raise ConfigError(f"data.key_frames must be auto|manifest|scorer, got {self.key_frames!r}")
        if self.padding_side not in ("right", "left"):
            raise ConfigError(f"data.padding_side must be right|left, got {self.padding_side!r}")
        device = str(dict(self.scorer_options).get("device", "cpu"))
        if (self.scorer in ("blip2", "clip") and device.startswith("cuda") and self.num_workers > 0
                and self.key_frames in ("auto", "scorer")):
            raise ConfigError(
                f"data.scorer={self.scorer} on {device} with data.num_workers={self.num_workers} and "
                f"data.key_frames={self.key_frames}: the scorer would be loaded inside forked DataLoader workers "
                "(CUDA cannot be re-initialised there, and every rank would use GPU 0). Precompute key_frames "
                "with `vpbench data craft` and set data.key_frames=manifest, or set data.num_workers=0")


@dataclass(frozen=True)
class ContrastiveConfig:
    enabled: bool = True  # false = Ablation B (plain SFT)
    weight: float = 0.1  # lambda_cl (eq. 7)
    temperature: float = 0.05
    blocks: tuple[int, ...] = (16,)  # hidden_states[l], 1-based; a list is averaged (Table 6)
    proj_dim: int = 256
    proj_hidden: int | None = None  # None = the LLM hidden size
    visual_dropout: float = 0.1  # SimCSE perturbation of the visual token embeddings (v2v needs > 0)
    segment_isolation: bool = True  # Z_v' cannot attend to Z_v
    gather_across_processes: bool = True  # negatives = the micro-batch of every process

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"contrastive.weight must be >= 0, got {self.weight}")
        if self.temperature <= 0:
            raise ConfigError(f"contrastive.temperature must be > 0, got {self.temperature}")
        if not 0 <= self.visual_dropout < 1:
            raise ConfigError(f"contrastive.visual_dropout must be in [0, 1), got {self.visual_dropout}")
        if not self.blocks or any(b < 1 for b in self.blocks):
            raise ConfigError(f"contrastive.blocks must be >= 1 (1-based), got {list(self.blocks)}")


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adamw"
    lr_sft: float = 1e-5  # the model
    lr_cl: float = 1e-4  # the projection heads
    weight_decay: float = 0.0  # on >= 2-D weights only
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    scheduler: str = "cosine"  # constant | linear | cosine (after linear warmup)
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.name != "adamw":
            raise ConfigError(f"optim.name: only 'adamw' is registered, got {self.name!r}")
        if self.scheduler not in ("constant", "linear", "cosine"):
            raise ConfigError(f"optim.scheduler must be constant|linear|cosine, got {self.scheduler!r}")
        if len(self.betas) != 2:
            raise ConfigError(f"optim.betas must hold two numbers, got {list(self.betas)}")


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str = "runs/sft_contrastive"
    seed: int = 0
    batch_size: int = 1  # per process and micro-batch
    grad_accum: int = 1
    max_steps: int = 1000  # optimiser steps
    save_every: int = 0  # 0 = only at the end
    log_every: int = 1
    mixed_precision: str = "no"  # no | bf16 | fp16 (accelerate)
    resume_from: str | None = None  # a checkpoint dir, or "latest"
    export: bool = True  # write a plain Qwen2.5-VL dir at the end
    overwrite: bool = False  # start afresh over an output_dir holding another run's checkpoints (deletes it)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1:
            raise ConfigError("train.batch_size, train.grad_accum and train.max_steps must be >= 1")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision must be no|bf16|fp16, got {self.mixed_precision!r}")


@dataclass(frozen=True)
class SFTConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


_SECTIONS = {f.name: f.type for f in dataclasses.fields(SFTConfig)}


def _plain(x: Any) -> Any:
    return plain(x)


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted ``section.key`` values (strings parsed as YAML scalars) into a raw mapping."""
    return _apply_overrides(raw, overrides, _SECTIONS)


def config_from_mapping(raw: Mapping[str, Any], where: str = "config") -> SFTConfig:
    return sectioned_from_mapping(SFTConfig, raw, where)


def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> SFTConfig:
    """YAML file (or None for defaults) + ``{"section.key": value}`` overrides → SFTConfig."""
    return load_sectioned(SFTConfig, path, overrides)
