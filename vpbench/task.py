"""What a benchmark task is: typed Python, plain values.

A ``Task`` says how to load the official annotation files from a data root into ``Sample``s,
how to turn a sample into chat messages under a ``Protocol``, which answer parsers exist (the
official one is the default), how to score one parsed answer, and how to aggregate records into
the benchmark's reported columns. Task definitions live in ``tasks/<name>/task.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vpbench.config import suggest
from vpbench.errors import ConfigError
from vpbench.protocol import Protocol
from vpbench.types import Message, MetricResult, Part, Record, Sample

ParseFn = Callable[[str, tuple[str, ...], Mapping[str, Any]], "str | None"]
"""(raw response, options, sample meta) -> parsed answer or None when nothing parses."""

ScoreFn = Callable[["str | None", str, Mapping[str, Any]], Mapping[str, float]]
"""(parsed answer or None, reference answer, sample meta) -> per-sample scores, e.g. {"acc": 1.0}."""


def chat_messages(text: str, protocol: Protocol, *, video_first: bool = True,
                  prefill: str | None = None) -> tuple[Message, ...]:
    """The single-turn chat of a video task: the protocol's system prompt (if any), one user turn
    holding the video and the text in the benchmark's official order, and optionally a pre-filled
    assistant turn that the model continues (e.g. MVBench's "Best option:(")."""
    parts = (Part("video"), Part("text", text)) if video_first else (Part("text", text), Part("video"))
    msgs: list[Message] = []
    if protocol.system_prompt:
        msgs.append(Message("system", (Part("text", protocol.system_prompt),)))
    msgs.append(Message("user", parts))
    if prefill:
        msgs.append(Message("assistant", (Part("text", prefill),)))
    return tuple(msgs)


@dataclass(frozen=True)
class Parser:
    """A named, versioned answer extractor. The version is written into every record."""

    name: str
    version: str
    fn: ParseFn
    description: str = ""

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def __call__(self, text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
        return self.fn(text, options, meta or {})


@dataclass(frozen=True)
class Aggregation:
    """Reported metrics of a task: overall rows plus per-group rows (e.g. per category)."""

    metrics: tuple[MetricResult, ...]
    by_group: Mapping[str, tuple[MetricResult, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


AggregateFn = Callable[[Sequence[Record], "StatsOptions"], Aggregation]


@dataclass(frozen=True)
class StatsOptions:
    """Bootstrap settings for confidence intervals (clusters = videos)."""

    n_boot: int = 1000
    seed: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise ConfigError(f"stats.n_boot must be an integer >= 0 (0: no bootstrap), got {self.n_boot!r}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"stats.alpha must be in (0, 1), got {self.alpha!r}")


@dataclass(frozen=True)
class Task:
    name: str
    version: str
    description: str
    load_samples: Callable[[Path], list[Sample]]
    """Read the official annotation files under a data root; raise DataError naming file+record."""
    build_messages: Callable[[Sample, Protocol], tuple[Message, ...]]
    protocol: Protocol
    parsers: Mapping[str, Parser]
    default_parser: str
    score: ScoreFn
    aggregate: AggregateFn
    primary_metric: str
    """Name of the headline MetricResult (e.g. "Dev-AVG")."""
    annotation_files: tuple[str, ...]
    """Files (relative to the data root) that must exist; shown by ``vpbench data check``."""
    video_dir: str = ""
    """Folder (relative to the data root) that ``VideoRef.path`` is relative to."""
    primary_score: str = "acc"
    """Per-sample score key behind the headline metric (paired comparisons use it)."""
    requires_video: bool = True
    chance_level: float | None = None
    synth: Callable[[Path, int], None] | None = None
    """Write generated data in the task's native format: synth(output_dir, seed)."""
    data_name: str | None = None
    """Sub-folder name under a parent data dir (default: the task name); tasks reading the same
    benchmark files share one (e.g. VideoMMMU's question-only variant)."""
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Named protocol override sets (e.g. "lmms_eval"), chosen with ``--set TASK.preset=NAME``."""
    export: Callable[[Sequence[Record]], Any] | None = None
    """Build the benchmark's official submission object (JSON-serialisable) from a run's records."""
    requires: Mapping[str, str] = field(default_factory=dict)
    """Python modules the scorer imports → how to install them (checked before any generation)."""

    @property
    def data_folder(self) -> str:
        return self.data_name or self.name

    def parser(self, name: str | None) -> Parser:
        key = name or self.default_parser
        if key not in self.parsers:
            raise ConfigError(
                f"task '{self.name}' has no parser '{key}'{suggest(key, self.parsers)}; "
                f"available: {', '.join(sorted(self.parsers))}"
            )
        return self.parsers[key]

    def resolve_protocol(self, preset: str | None, overrides: Mapping[str, Any]) -> Protocol:
        """Default protocol, then a named preset, then per-run overrides (later wins)."""
        values: dict[str, Any] = {}
        if preset is not None:
            if preset not in self.presets:
                known = ", ".join(sorted(self.presets)) or "none"
                raise ConfigError(f"task '{self.name}' has no protocol preset '{preset}'"
                                  f"{suggest(preset, self.presets)}; presets: {known}")
            values.update(self.presets[preset])
        values.update(overrides)
        return self.protocol.with_overrides(values)

    def video_path(self, data_root: Path, rel: str) -> Path:
        """``rel`` under the data root; an absolute path or one climbing out with ``..`` is refused."""
        from vpbench.errors import DataError
        from vpbench.validation import path_escape_problem

        problem = path_escape_problem(rel) if isinstance(rel, str) else f"video path {rel!r} is not a string"
        if problem:
            raise DataError(f"task '{self.name}': {problem}")
        return Path(data_root) / self.video_dir / rel
