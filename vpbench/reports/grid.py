"""What ``vpbench reproduce`` makes, as data: a models config (Tables 1-4: which models to evaluate)
or an ablation grid (Tables 5-6: recipe stages and the variants that change them). Loaded strictly
from YAML under ``reports/configs/`` and ``reports/grids/`` (or ``--config FILE``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vpbench.config import from_mapping, load_yaml, suggest
from vpbench.errors import ConfigError

SCALES = ("tiny", "paper")


@dataclass(frozen=True)
class DataSpec:
    synth: bool = False              # generate each task's data (`vpbench synth`) under the runs root
    root: str = ""                   # else: a parent folder with one sub-folder per task
    seed: int = 0

    def __post_init__(self) -> None:
        if self.synth == bool(self.root):
            raise ConfigError("data: give exactly one of synth: true or root: PATH")


@dataclass(frozen=True)
class TrainDataSpec:
    """A generated training split (`vpbench synth TASK --split train`) under ``{root}/train_data``,
    disjoint from every evaluation split; stage overrides name it as ``{train_data}``."""
    synth: str = ""                  # "" = none; else the task whose training split is generated
    n_videos: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        if self.synth and self.synth != "motionbench":
            raise ConfigError(f"train_data.synth: only 'motionbench' has a training split generator, got {self.synth!r}")
        if self.n_videos < 1:
            raise ConfigError(f"train_data.n_videos must be >= 1, got {self.n_videos}")


@dataclass(frozen=True)
class ModelEntry:
    key: str                         # row key in the tidy frame
    model: str                       # vpbench run --model spec; "@tiny" = build the tiny random model
    label: str = ""
    paper_rows: Mapping[str, Any] = field(default_factory=dict)  # table → paper row (name or {col: value})


@dataclass(frozen=True)
class ModelsConfig:
    data: DataSpec
    models: tuple[ModelEntry, ...]
    scale: str = "tiny"
    eval_args: tuple[str, ...] = ()  # extra `vpbench run` flags, e.g. [--set, stats.n_boot=2000]
    gpu_eval_args: tuple[str, ...] = ("--device", "cuda", "--batch-size", "8")
    torch_threads: int = 0           # > 0: torch intra-op threads of every step (0: torch's default)

    def __post_init__(self) -> None:
        if self.torch_threads < 0:
            raise ConfigError(f"torch_threads must be >= 0, got {self.torch_threads}")
        keys = [m.key for m in self.models]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"models: duplicate keys {keys}")
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {SCALES}, got {self.scale!r}")


@dataclass(frozen=True)
class Stage:
    name: str                        # sft | grpo | ...
    recipe: str                      # recipes/<recipe>.py must exist, else the stage is missing
    config: str                      # recipe YAML, relative to the checkout
    launch: tuple[str, ...] = ()     # argv before --config: [vpbench, train, sft] or [accelerate, launch, ...]
    args: tuple[str, ...] = ()       # extra flags (e.g. --prepare-tiny)
    set: Mapping[str, Any] = field(default_factory=dict)  # overrides; {root} {out} {seed} {prev} {base} expand
    export: str = "export"           # sub-dir of the stage's output holding the exported model
    needs_gpu: bool = False


@dataclass(frozen=True)
class Variant:
    key: str
    paper_row: Any = None            # the paper row it sits beside (name or {col: value})
    baseline: bool = False           # paired Δ CIs of every other variant are against this one
    set: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # stage → overrides
    eval_args: tuple[str, ...] = ()
    missing: str = ""                # why this variant cannot be made at this scale (a missing row)
    label: str = ""


@dataclass(frozen=True)
class EvalSpec:
    tasks: tuple[str, ...]
    args: tuple[str, ...] = ()
    gpu_args: tuple[str, ...] = ("--device", "cuda", "--batch-size", "8")


@dataclass(frozen=True)
class Grid:
    table: str
    data: DataSpec
    stages: tuple[Stage, ...]
    eval: EvalSpec
    variants: tuple[Variant, ...]
    scale: str = "tiny"
    base_model: str = "@tiny"        # first stage's {base}: "@tiny[:micro|small]" builds the tiny random model
    seeds: int = 1
    train_data: TrainDataSpec = field(default_factory=TrainDataSpec)
    torch_threads: int = 0           # > 0: torch intra-op threads of every step (tiny models on a shared CPU: 1)

    def __post_init__(self) -> None:
        if self.torch_threads < 0:
            raise ConfigError(f"grid {self.table}: torch_threads must be >= 0, got {self.torch_threads}")
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"grid {self.table}: duplicate variant keys {keys}")
        if sum(v.baseline for v in self.variants) > 1:
            raise ConfigError(f"grid {self.table}: more than one baseline variant")
        names = [s.name for s in self.stages]
        for v in self.variants:
            for stage in v.set:
                if stage not in names:
                    raise ConfigError(f"grid {self.table}: variant {v.key} sets stage '{stage}'"
                                      f"{suggest(stage, names)}; stages: {names}")
        if self.base_model.startswith("@") and tiny_variant(self.base_model) is None:
            raise ConfigError(f"grid {self.table}: base_model {self.base_model!r}: use @tiny, @tiny:micro or @tiny:small")
        if self.scale not in SCALES or self.seeds < 1:
            raise ConfigError(f"grid {self.table}: scale must be one of {SCALES} and seeds >= 1")


TINY_VARIANTS = ("micro", "small")


def tiny_variant(model: str) -> str | None:
    """``@tiny`` → micro, ``@tiny:small`` → small; None when ``model`` names no tiny model."""
    name, _, variant = model.partition(":")
    if name != "@tiny":
        return None
    return variant or "micro" if (variant or "micro") in TINY_VARIANTS else None


def _strict(cls, raw: Mapping[str, Any], where: str, nested: Mapping[str, Any]) -> Any:
    body = dict(raw)
    for key, (item_cls, many) in nested.items():
        if key in body:
            value = body[key]
            if many:
                if not isinstance(value, list):
                    raise ConfigError(f"{where}: '{key}' must be a list")
                body[key] = tuple(from_mapping(item_cls, v, f"{where}: {key}[{i}]") for i, v in enumerate(value))
            else:
                body[key] = from_mapping(item_cls, value or {}, f"{where}: {key}")
    return from_mapping(cls, body, where)


def load_models_config(path: Path) -> ModelsConfig:
    return _strict(ModelsConfig, load_yaml(path), str(path), {"data": (DataSpec, False), "models": (ModelEntry, True)})


def load_grid(path: Path) -> Grid:
    return _strict(Grid, load_yaml(path), str(path), {"data": (DataSpec, False), "stages": (Stage, True),
                                                      "eval": (EvalSpec, False), "variants": (Variant, True),
                                                      "train_data": (TrainDataSpec, False)})


def default_config(reports: Path, table: str, kind: str, scale: str) -> Path:
    """reports/configs/models_<scale>.yaml (Tables 1-4) or reports/grids/<table>_<scale>.yaml."""
    path = reports / "configs" / f"models_{scale}.yaml" if kind == "models" else reports / "grids" / f"{table}_{scale}.yaml"
    if not path.is_file():
        raise ConfigError(f"no default {scale}-scale config for {table} ({path}); pass --config FILE")
    return path
