"""Configuration of the stage-2 recipe (Comparative GRPO, RECIPE §3), loaded strictly from YAML.

Defaults are RECIPE §3: G = 8, λ_c = 1.0, EMA momentum 0.9, max_refeed 2, β = 0.04, ε = 0.2,
lr 1e-6, batch 8 prompts. Ablation C: ``grpo.lambda_c=0 grpo.refeed=false`` (standard GRPO).
``grpo.comparator=tgrpo``: Video-R1's T-GRPO rule over shuffled frames instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vpbench.errors import ConfigError
from vpbench.train.config import DataConfig as SFTDataConfig
from vpbench.train.config import ModelConfig
from vpbench.train.configio import load_sectioned, plain

REFEED_INSTRUCTION = "Re-answer with attention to fine-grained visual details."


@dataclass(frozen=True)
class RLDataConfig(SFTDataConfig):
    manifest: str = ""  # the rl.jsonl of `vpbench data craft`
    max_prompt_length: int = 16384
    max_length: int = 32768  # unused by stage 2 (prompt + completion bound: max_prompt_length + max_new_tokens)


@dataclass(frozen=True)
class QualityConfig:
    choice_parser: str = "motionbench"  # task[:parser] whose parser reads option letters
    number_parser: str = "vsibench:lmms_eval"  # task[:parser] whose parser reads numbers
    nli_model: str = ""  # local NLI checkpoint dir (open-ended answers); "" = none (open answers then fail)
    nli_device: str = "cpu"
    nli_batch_size: int = 32
    format_weight: float = 0.5  # base reward = Q + format_weight · format
    min_chars: int = 1
    max_chars: int = 2000


@dataclass(frozen=True)
class GRPOSection:
    num_generations: int = 8  # G, on the full and on the degraded video each
    comparator: str = "comparative"  # comparative (paper) | tgrpo (Video-R1) | none
    lambda_c: float = 1.0
    ema_momentum: float = 0.9
    refeed: bool = True
    max_refeed: int = 2
    refeed_instruction: str = REFEED_INSTRUCTION
    beta: float = 0.04
    epsilon: float = 0.2
    epsilon_high: float | None = None
    num_iterations: int = 1  # μ: optimiser updates per batch of rollouts
    adv_eps: float = 1e-4
    scale_rewards: bool = True
    tgrpo_mu: float = 0.8
    tgrpo_alpha: float = 0.3

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ConfigError(f"grpo.num_generations must be >= 2 (group statistics), got {self.num_generations}")
        if self.comparator not in ("comparative", "tgrpo", "none"):
            raise ConfigError(f"grpo.comparator must be comparative|tgrpo|none, got {self.comparator!r}")
        if not 0 <= self.ema_momentum < 1:
            raise ConfigError(f"grpo.ema_momentum must be in [0, 1), got {self.ema_momentum}")
        if self.max_refeed < 0 or self.num_iterations < 1 or self.beta < 0 or self.epsilon <= 0:
            raise ConfigError("grpo.max_refeed >= 0, grpo.num_iterations >= 1, grpo.beta >= 0, grpo.epsilon > 0")
        if self.refeed and self.comparator != "comparative":
            raise ConfigError(f"grpo.refeed needs grpo.comparator=comparative (the refeed test is mean r_c <= 0), got "
                              f"{self.comparator!r}; set grpo.refeed=false")

    @property
    def uses_degraded(self) -> bool:
        return self.comparator == "comparative"


@dataclass(frozen=True)
class RolloutConfig:
    backend: str = "hf"  # hf (transformers generate, the in-memory policy) | vllm (colocated, [vllm] extra)
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    vllm_gpu_memory_utilization: float = 0.3
    vllm_tensor_parallel_size: int = 1
    vllm_max_model_len: int = 16384

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "vllm"):
            raise ConfigError(f"rollout.backend must be hf|vllm, got {self.backend!r}")
        if self.max_new_tokens < 1 or self.temperature <= 0:
            raise ConfigError("rollout.max_new_tokens >= 1 and rollout.temperature > 0")


@dataclass(frozen=True)
class GRPOOptimConfig:
    name: str = "adamw"
    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    scheduler: str = "constant"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.name != "adamw":
            raise ConfigError(f"optim.name: only 'adamw' is registered, got {self.name!r}")
        if self.scheduler not in ("constant", "linear", "cosine"):
            raise ConfigError(f"optim.scheduler must be constant|linear|cosine, got {self.scheduler!r}")
        if len(self.betas) != 2:
            raise ConfigError(f"optim.betas must hold two numbers, got {list(self.betas)}")


@dataclass(frozen=True)
class GRPOTrainConfig:
    output_dir: str = "runs/grpo_comparative"
    seed: int = 0
    batch_size: int = 8  # prompts per process and step
    max_steps: int = 1000
    save_every: int = 0
    log_every: int = 1
    mixed_precision: str = "no"
    resume_from: str | None = None
    export: bool = True
    torch_threads: int = 0  # > 0: torch.set_num_threads (tiny models on a shared CPU run fastest on 1)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.torch_threads < 0:
            raise ConfigError("train.batch_size and train.max_steps must be >= 1, train.torch_threads >= 0")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision must be no|bf16|fp16, got {self.mixed_precision!r}")


@dataclass(frozen=True)
class GRPOConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: RLDataConfig = field(default_factory=RLDataConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    grpo: GRPOSection = field(default_factory=GRPOSection)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    optim: GRPOOptimConfig = field(default_factory=GRPOOptimConfig)
    train: GRPOTrainConfig = field(default_factory=GRPOTrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))


RESUME_SECTIONS = ("model", "data", "quality", "grpo", "rollout", "optim")


def load_grpo_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> GRPOConfig:
    """YAML file (or None for defaults) + ``{"section.key": value}`` overrides → GRPOConfig."""
    return load_sectioned(GRPOConfig, path, overrides)
