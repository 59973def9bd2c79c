"""Strict configuration helpers: unknown keys are errors with a "did you mean", values are typed.

Used by the run config (``--set key=value``), the protocol overrides and the recipe configs.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

import yaml

from vpbench.errors import ConfigError

T = TypeVar("T")


def suggest(key: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known key, or '' when nothing is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_keys(values: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    known = list(known)
    for key in values:
        if key not in known:
            raise ConfigError(
                f"unknown key '{key}' in {where}{suggest(key, known)}; known keys: {', '.join(sorted(known))}"
            )


def parse_scalar(text: str) -> Any:
    """Parse a command-line value with YAML rules: '2' → 2, '0.5' → 0.5, 'null' → None, 'x' → 'x'."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _field_type(obj_or_cls: Any, name: str) -> Any:
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    hints = typing.get_type_hints(cls)
    return hints[name]


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Coerce ``value`` to the annotated type ``tp`` (str → int/float/bool, list → tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip() in ("null", "~"))):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, name)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"bad value for '{name}': {value!r} ({'; '.join(errors)})")
    if isinstance(value, str) and tp is not str and tp is not Any:
        value = parse_scalar(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{name}' must be true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{name}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{name}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"'{name}' must be a string, got {value!r}")
        return str(value)
    if origin in (tuple, list):
        if isinstance(value, (str, int, float)):
            value = [value]
        item = args[0] if args else Any
        return tuple(coerce(v, item, name) for v in value)
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{name}' must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_mapping(tp, value, where=name)
    return value


def coerce_field(obj: Any, name: str, value: Any) -> Any:
    return coerce(value, _field_type(obj, name), name)


def from_mapping(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``values`` strictly (unknown keys fail, types coerced)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    check_keys(values, names, where)
    kwargs = {k: coerce_field(cls, k, v) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """['a.b=1', 'c=x'] → {'a.b': '1', 'c': 'x'}; a missing '=' is an error."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value (e.g. protocol.fps=1)")
        key, _, value = item.partition("=")
        out[key.strip()] = value
    return out


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data
