"""The backend contract: frames in, text out. Backends never see datasets or scoring."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from vpbench.types import Frames, Request, Response, Sample


@dataclass(frozen=True)
class Prepared:
    """A request with the frames the engine decoded for it (None for text-only tasks or
    for backends that need no frames, such as ``replay``)."""

    request: Request
    frames: Frames | None
    video_path: Path | None = None  # the shown video on disk (for backends that read the file themselves)
    encoded: Any = None
    """The backend's own per-sample preparation done ahead by ``Backend.prepare`` (prefetch), or
    the exception it raised; None: not done (``generate`` does it)."""


class Backend(Protocol):
    """What the engine calls.

    ``needs_frames``: whether the engine must decode videos (``replay`` does not).
    ``fingerprint()``: identity of the model (weights hash + backend + options); keys the cache.
    ``describe()``: plain values for the run manifest (path, weights hash, dtype, versions).
    ``generate(batch)``: one ``Response`` per ``Prepared``, in order. A per-sample failure is a
    ``Response`` with ``error`` set, not an exception.
    ``check_samples(task, samples)``: preflight problems the backend itself can see before anything
    is generated (``replay``: samples without a response), as {sample id: problem}; ``fix`` is the
    sentence the error ends with. ``BackendBase`` gives the defaults.
    """

    name: str
    needs_frames: bool
    batch_size: int

    def fingerprint(self) -> str: ...

    def describe(self) -> dict[str, Any]: ...

    def generate(self, batch: Sequence[Prepared]) -> list[Response]: ...

    def check_samples(self, task: str, samples: Sequence[Sample]) -> Mapping[str, str]: ...

    fix: str


class BackendBase:
    """Defaults for the optional parts of ``Backend``: no backend-side preflight problems."""

    needs_frames: bool = True
    fix: str = ""

    def check_samples(self, task: str, samples: Sequence[Sample]) -> Mapping[str, str]:
        return {}

    def prepare(self, prep: Prepared) -> Prepared:
        """Per-sample work that can run on the prefetch thread ahead of ``generate`` (none here)."""
        return prep


def parse_spec_options(cls: type, pairs: Sequence[str], skip: tuple[str, ...], backend: str) -> dict[str, Any]:
    """The ``key=value`` options of a backend spec (``vllm:DIR,tp=2``) as typed keyword arguments of
    the options dataclass ``cls`` (fields named in ``skip`` come from the spec's head, not options).
    An unknown key or an uncastable value is a ConfigError naming the backend and the known keys."""
    from dataclasses import fields

    from vpbench.config import suggest
    from vpbench.errors import ConfigError

    kinds = {f.name: f.type for f in fields(cls) if f.name not in skip}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or key not in kinds:
            raise ConfigError(f"{backend} backend: unknown option {key!r}{suggest(key, kinds)}; "
                              f"known: {', '.join(sorted(kinds))}")
        cast = {"int": int, "float": float}.get(str(kinds[key]), str)
        try:
            values[key] = cast(value)
        except ValueError as e:
            raise ConfigError(f"{backend} backend: option {key}={value!r} is not a {cast.__name__}") from e
    return values
