"""``CraftConfig``: the data-craft pipeline's configuration, loaded strictly from YAML.

Sections (unknown keys fail with a "did you mean"; ``key=value`` overrides use dotted paths, e.g.
``sparsify.target_ratio=0.1``, ``protocol.fps=4``, ``annotate.endpoint.model=gpt-4o``). Relative paths resolve
against the current working directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vpbench.config import check_keys, from_mapping, load_yaml, parse_scalar
from vpbench.craft.validate import ValidatorConfig
from vpbench.errors import ConfigError
from vpbench.protocol import Protocol


@dataclass(frozen=True)
class InputConfig:
    kind: str = "motionbench"  # motionbench | videos
    root: str = ""  # MotionBench folder, or the folder of videos
    annotations: str | None = None  # videos only: JSONL of existing annotations (vpbench/craft/inputs.py)
    transient_categories: tuple[str, ...] = ("Repetition Count",)  # motionbench: question types to sparsify
    limit: int | None = None  # first N items only

    def __post_init__(self) -> None:
        if self.kind not in ("motionbench", "videos"):
            raise ConfigError(f"input.kind must be motionbench|videos, got {self.kind!r}")
        if not self.root:
            raise ConfigError("input.root is required (a MotionBench folder or a folder of videos)")
        if self.annotations and self.kind != "videos":
            raise ConfigError("input.annotations is only read with input.kind=videos")


@dataclass(frozen=True)
class AnnotateConfig:
    annotator: str = "template"  # template | endpoint
    endpoint: dict[str, Any] = field(default_factory=dict)  # EndpointConfig options (vpbench/craft/annotate.py)
    keep_existing: bool = True  # endpoint: also keep the clip's existing caption/QA


@dataclass(frozen=True)
class KeywordsConfig:
    backend: str = "rules"  # rules | chat (vpbench.keyframes.keywords)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyframeConfig:
    scorer: str = "motion_energy"  # blip2 | clip | random | motion_energy
    scorer_options: dict[str, Any] = field(default_factory=dict)
    min_prominence: float = 0.0
    max_key_ratio: float = 1.0


@dataclass(frozen=True)
class CraftSparsifyConfig:
    enabled: bool = True
    segments: str = "auto"  # auto (annotation when given, else scorer) | annotation | scorer
    key_pad: int = 0  # scorer segments: frames added on each side of a key frame
    nonkey_fps: float = 8.0
    target_ratio: float = 0.05
    adapt_nonkey_fps: bool = True
    max_nonkey_fps: float | None = None
    video_dir: str = "videos"  # sparsified clips, under output.dir

    def __post_init__(self) -> None:
        if self.segments not in ("auto", "annotation", "scorer"):
            raise ConfigError(f"sparsify.segments must be auto|annotation|scorer, got {self.segments!r}")
        if self.key_pad < 0:
            raise ConfigError(f"sparsify.key_pad must be >= 0, got {self.key_pad}")


@dataclass(frozen=True)
class PromptConfig:
    caption: str = "Describe the motion and events in the video in temporal order."
    choice: str = "{question}\n{options}\nAnswer with the option's letter from the given choices directly."
    number: str = "{question}\nAnswer with a number only."
    open: str = "{question}"


@dataclass(frozen=True)
class OutputConfig:
    dir: str = ""
    rl_captions: bool = True  # caption prompts also go to rl.jsonl (answer_type open)
    retry_errors: bool = False  # re-run items whose last state is a (non-retryable) error


@dataclass(frozen=True)
class CraftConfig:
    input: InputConfig
    output: OutputConfig
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    validate: ValidatorConfig = field(default_factory=ValidatorConfig)
    keywords: KeywordsConfig = field(default_factory=KeywordsConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    sparsify: CraftSparsifyConfig = field(default_factory=CraftSparsifyConfig)
    protocol: Protocol = field(default_factory=Protocol)
    prompts: PromptConfig = field(default_factory=PromptConfig)

    def __post_init__(self) -> None:
        if not self.output.dir:
            raise ConfigError("output.dir is required")

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the craft report; secrets (``api_key``) are redacted."""
        return _plain(dataclasses.asdict(self))


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: ("<redacted>" if k == "api_key" and v else _plain(v)) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


_SECTIONS = [f.name for f in dataclasses.fields(CraftConfig)]


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"override '{key}' must be section.key=value (sections: {', '.join(_SECTIONS)})")
    check_keys({parts[0]: None}, _SECTIONS, "override")
    node = raw
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{key}': '{p}' is not a mapping in the config")
    node[parts[-1]] = parse_scalar(value) if isinstance(value, str) else value


def craft_config_from_mapping(raw: Mapping[str, Any], where: str = "craft config",
                              protocol_overrides: Mapping[str, Any] | None = None) -> CraftConfig:
    """Build a CraftConfig from a raw mapping; ``protocol_overrides`` apply after the ``protocol`` section (so
    ``nframes`` given as an override switches off an ``fps`` from the file, as ``Protocol.with_overrides``)."""
    check_keys(raw, _SECTIONS, where)
    vals: dict[str, Any] = {}
    for section, values in raw.items():
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{where}: section '{section}' must be a mapping")
        vals[section] = dict(values or {})
    proto = vals.pop("protocol", {})
    for name in ("input", "output"):
        if name not in vals:
            raise ConfigError(f"{where}: section '{name}' is required")
    cfg: CraftConfig = from_mapping(CraftConfig, vals, where)
    protocol = Protocol().with_overrides(proto).with_overrides(dict(protocol_overrides or {}))
    return dataclasses.replace(cfg, protocol=protocol)


def load_craft_config(path: Path, overrides: Mapping[str, str] | None = None) -> CraftConfig:
    """YAML file + ``{"section.key": "value"}`` overrides → CraftConfig (ConfigError on any bad key/value)."""
    raw = load_yaml(Path(path))
    proto: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key.startswith("protocol."):
            proto[key[len("protocol."):]] = value
        else:
            _set_dotted(raw, key, value)
    return craft_config_from_mapping(raw, where=str(path), protocol_overrides=proto)
