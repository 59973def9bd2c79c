"""``--set key=value`` resolution for a run: protocol fields, parser choice and bootstrap settings.

Accepted keys: ``protocol.<field>`` (every task), ``<task>.protocol.<field>`` (one task),
``parser`` / ``<task>.parser``, ``preset`` / ``<task>.preset`` (named protocol sets), ``stats.<field>``, ``gap.<field>`` (perception gap). Anything else fails with a suggestion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from vpbench.config import check_keys, coerce_field, suggest
from vpbench.engine.gap import GapOptions
from vpbench.errors import ConfigError
from vpbench.protocol import Protocol
from vpbench.task import StatsOptions


@dataclass(frozen=True)
class ResolvedOverrides:
    protocol: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # task → {field: value}
    parser: Mapping[str, str] = field(default_factory=dict)  # task → parser name
    preset: Mapping[str, str] = field(default_factory=dict)  # task → protocol preset name
    stats: StatsOptions = StatsOptions()
    gap: GapOptions = GapOptions()


def resolve(overrides: Mapping[str, Any], tasks: Sequence[str]) -> ResolvedOverrides:
    proto_fields = [f.name for f in dataclasses.fields(Protocol)]
    stats_fields = [f.name for f in dataclasses.fields(StatsOptions)]
    gap_fields = [f.name for f in dataclasses.fields(GapOptions)]
    gap: dict[str, Any] = {}
    protocol: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    parser: dict[str, str] = {}
    preset: dict[str, str] = {}
    stats: dict[str, Any] = {}
    known = (["parser", "preset"] + [f"{t}.preset" for t in tasks] + [f"protocol.{f}" for f in proto_fields] + [f"stats.{f}" for f in stats_fields]
             + [f"gap.{f}" for f in gap_fields]
             + [f"{t}.parser" for t in tasks] + [f"{t}.protocol.{f}" for t in tasks for f in proto_fields])
    # global keys first, task-specific ones override them
    ordered = sorted(overrides.items(), key=lambda kv: kv[0].split(".")[0] in tasks)
    for key, value in ordered:
        parts = key.split(".")
        scope = list(tasks)
        if parts[0] in tasks:
            scope, parts = [parts[0]], parts[1:]
        if parts == ["parser"]:
            for t in scope:
                parser[t] = str(value)
        elif parts == ["preset"]:
            for t in scope:
                preset[t] = str(value)
        elif len(parts) == 2 and parts[0] == "protocol":
            check_keys({parts[1]: value}, proto_fields, where=f"--set {key}")
            for t in scope:
                protocol[t][parts[1]] = value
        elif len(parts) == 2 and parts[0] == "stats" and len(scope) == len(tasks):
            check_keys({parts[1]: value}, stats_fields, where=f"--set {key}")
            stats[parts[1]] = coerce_field(StatsOptions, parts[1], value)
        elif len(parts) == 2 and parts[0] == "gap" and len(scope) == len(tasks):
            check_keys({parts[1]: value}, gap_fields, where=f"--set {key}")
            gap[parts[1]] = coerce_field(GapOptions, parts[1], value)
        else:
            raise ConfigError(f"unknown --set key '{key}'{suggest(key, known)}; use protocol.<field>, "
                              f"<task>.protocol.<field>, [<task>.]parser, [<task>.]preset, stats.<field> or gap.<field>")
    return ResolvedOverrides(protocol=protocol, parser=parser, preset=preset, stats=StatsOptions(**stats), gap=GapOptions(**gap))
