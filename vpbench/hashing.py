"""Stable content hashes over plain values and dataclasses."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any


_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plain(obj: Any) -> Any:
    cls = type(obj)
    if cls in _SCALARS:
        return obj
    if dataclasses.is_dataclass(cls) and not isinstance(obj, type):
        return {name: _plain(getattr(obj, name)) for name in _field_names(cls)}
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def safe_dumps(obj: object, **kw) -> str:
    """``json.dumps`` that always yields encodable text: readable UTF-8 when it can, ``\\uXXXX``
    escapes when a string holds a lone surrogate (e.g. a model's broken output), so writing it
    can never fail and reading it back gives the same string."""
    text = json.dumps(obj, ensure_ascii=False, **kw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, **kw)
    return text


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the bytes every fingerprint is computed over."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 hex digest (truncated to ``length``) of ``canonical_json(obj)``."""
    # surrogatepass: a lone surrogate in a text (e.g. a response) hashes instead of crashing
    return hashlib.sha256(canonical_json(obj).encode("utf-8", "surrogatepass")).hexdigest()[:length]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
