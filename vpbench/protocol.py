"""The evaluation protocol: frame sampling, pixel budget, prompt and decoding, as data.

A task carries a default ``Protocol``; a run may override any field (``--set protocol.fps=1``).
Its ``fingerprint`` is stored with every record and result so that numbers made under different
protocols never mix. Defaults follow qwen-vl-utils 0.0.10 (what Qwen2.5-VL reports use).
"""

from __future__ import annotations

import dataclasses
import math
import string
from dataclasses import dataclass
from typing import Any, Mapping

from vpbench.errors import ConfigError
from vpbench.hashing import stable_hash

VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
VIDEO_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)


_INT = int
_NUM = (int, float)
_KINDS: dict[str, Any] = {
    "fps": _NUM, "nframes": _INT, "min_frames": _INT, "max_frames": _INT, "frame_factor": _INT,
    "min_pixels": _INT, "max_pixels": _INT, "total_pixels": _INT, "prompt_template": str, "prompt_version": str,
    "system_prompt": str, "max_new_tokens": _INT, "temperature": _NUM, "top_p": _NUM, "seed": _INT,
}
_KIND_NAMES = {_INT: "an integer", _NUM: "a number", str: "a string"}
_OPTIONAL = {"fps", "nframes", "system_prompt"}


def _check_template(template: str) -> None:
    """A ``str.format`` template must parse and name only plain fields (``{question}``)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ConfigError(f"protocol.prompt_template {template!r} is not a valid template ({e}); "
                          f"write fields as {{name}} and literal braces as {{{{ }}}}") from e
    bad = [f for f in fields if not f.isidentifier()]
    if bad:
        raise ConfigError(f"protocol.prompt_template names field {{{bad[0]}}}: fields must be plain names such as "
                          f"{{question}} (positional, indexed and attribute fields are not allowed)")


@dataclass(frozen=True)
class Protocol:
    """How a sample is shown to the model and how the model decodes.

    Sampling: exactly one of ``fps`` / ``nframes``. Frame counts follow Qwen2.5-VL's
    ``smart_nframes`` (multiples of ``frame_factor``, clamped to [min_frames, max_frames] and to
    the clip length). Pixels follow ``smart_resize`` with [min_pixels, max_pixels] per frame and
    ``total_pixels`` over the clip. ``prompt_template`` is a ``str.format`` template whose fields
    the task documents; ``prompt_version`` names it.
    """

    fps: float | None = 2.0
    nframes: int | None = None
    min_frames: int = 4
    max_frames: int = 768
    frame_factor: int = 2
    min_pixels: int = VIDEO_MIN_PIXELS
    max_pixels: int = VIDEO_MAX_PIXELS
    total_pixels: int = VIDEO_TOTAL_PIXELS
    prompt_template: str = "{question}"
    prompt_version: str = "v1"
    system_prompt: str | None = None
    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.fps is None) == (self.nframes is None):
            raise ConfigError(
                f"protocol: set exactly one of fps / nframes (got fps={self.fps}, nframes={self.nframes})"
            )
        self._check_types()
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"protocol.fps must be a finite number > 0, got {self.fps}")
        for name in ("frame_factor", "min_frames", "max_frames", "total_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"protocol.{name} must be >= 1, got {getattr(self, name)}")
        if self.total_pixels < self.min_pixels:
            raise ConfigError(f"protocol.total_pixels ({self.total_pixels}) must be >= protocol.min_pixels "
                              f"({self.min_pixels})")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise ConfigError(f"protocol.top_p must be in (0, 1], got {self.top_p}")
        if not math.isfinite(self.temperature):
            raise ConfigError(f"protocol.temperature must be finite, got {self.temperature}")
        _check_template(self.prompt_template)
        if self.nframes is not None and self.nframes < self.frame_factor:
            raise ConfigError(f"protocol.nframes must be >= {self.frame_factor}, got {self.nframes}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(
                f"protocol: need 0 < min_pixels <= max_pixels (got {self.min_pixels}, {self.max_pixels})"
            )
        if self.min_frames > self.max_frames:
            raise ConfigError("protocol.min_frames must be <= protocol.max_frames")
        if self.max_new_tokens <= 0:
            raise ConfigError("protocol.max_new_tokens must be > 0")
        if self.temperature < 0:
            raise ConfigError("protocol.temperature must be >= 0")

    def _check_types(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = _KINDS.get(f.name)
            if kind is None or (value is None and f.name in _OPTIONAL):
                continue
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ConfigError(f"protocol.{f.name} must be {_KIND_NAMES[kind]}, got {value!r}")

    # -- fingerprints -------------------------------------------------------------------------
    def sampler_fields(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "nframes": self.nframes,
            "min_frames": self.min_frames,
            "max_frames": self.max_frames,
            "frame_factor": self.frame_factor,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "total_pixels": self.total_pixels,
        }

    def sampler_fingerprint(self) -> str:
        """Identity of the frames a video yields under this protocol (frame-cache key part)."""
        return stable_hash(self.sampler_fields())

    def fingerprint(self) -> str:
        """Hash of every field (computed once per instance: the protocol is frozen)."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            fp = stable_hash(self)
            object.__setattr__(self, "_fingerprint", fp)
        return fp

    def describe(self) -> str:
        frames = f"fps{self.fps:g}" if self.fps is not None else f"n{self.nframes}"
        return f"{frames},px{self.max_pixels // (28 * 28)},tok{self.max_new_tokens},{self.prompt_version}"

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    # -- overrides ----------------------------------------------------------------------------
    def with_overrides(self, overrides: Mapping[str, Any]) -> "Protocol":
        """Return a copy with ``overrides`` applied. Unknown keys fail with a suggestion.

        Setting ``nframes`` alone switches off ``fps`` and vice versa, so ``--set
        protocol.nframes=8`` works on a task whose default samples by fps.
        """
        from vpbench.config import check_keys, coerce_field

        names = [f.name for f in dataclasses.fields(self)]
        check_keys(overrides, names, where="protocol")
        values = {k: coerce_field(self, k, v) for k, v in overrides.items()}
        if "nframes" in values and values["nframes"] is not None and "fps" not in values:
            values["fps"] = None
        if "fps" in values and values["fps"] is not None and "nframes" not in values:
            values["nframes"] = None
        return dataclasses.replace(self, **values)
