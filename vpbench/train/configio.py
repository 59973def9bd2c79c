"""Strict sectioned configs for the training recipes.

``load_sectioned(cls, path, overrides)``: YAML + dotted ``section.key=value`` overrides → a frozen
config dataclass whose fields are the sections; unknown sections / keys fail with a "did you mean",
values are typed by ``vpbench.config.from_mapping``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping, TypeVar

from vpbench.config import check_keys, from_mapping, load_yaml, parse_scalar
from vpbench.errors import ConfigError

T = TypeVar("T")


def sections_of(cls: type) -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted ``section.key`` values (strings parsed as YAML scalars) into a raw mapping."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    for key, value in overrides.items():
        section, dot, name = key.partition(".")
        if not dot or not name:
            raise ConfigError(f"override '{key}' must be section.key=value (sections: {', '.join(sections)})")
        check_keys({section: None}, sections, "override")
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise ConfigError(f"config section '{section}' must be a mapping")
        out[section][name] = parse_scalar(value) if isinstance(value, str) else value
    return out


_SCI = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def sci_floats(x: Any) -> Any:
    """PyYAML reads ``1e-5`` (no dot) as a string (YAML 1.1); turn such strings into floats."""
    if isinstance(x, Mapping):
        return {k: sci_floats(v) for k, v in x.items()}
    if isinstance(x, list):
        return [sci_floats(v) for v in x]
    if isinstance(x, str) and _SCI.match(x.strip()):
        return float(x)
    return x


def sectioned_from_mapping(cls: type[T], raw: Mapping[str, Any], where: str = "config") -> T:
    raw = sci_floats(raw)
    sections = sections_of(cls)
    check_keys(raw, sections, where)
    for section, values in raw.items():
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{where}: section '{section}' must be a mapping")
    return from_mapping(cls, {k: (v or {}) for k, v in raw.items()}, where)


def load_sectioned(cls: type[T], path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> T:
    """YAML file (or None for defaults) + ``{"section.key": value}`` overrides → ``cls``."""
    raw = load_yaml(Path(path)) if path is not None else {}
    raw = apply_overrides(raw, overrides or {}, sections_of(cls))
    return sectioned_from_mapping(cls, raw, where=str(path) if path else "config")


def plain(x: Any) -> Any:
    """Dataclass-asdict output with tuples as lists (JSON / YAML friendly)."""
    if isinstance(x, Mapping):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x
