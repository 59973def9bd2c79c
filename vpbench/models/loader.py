"""The backend registry: a ``--model`` spec ``KIND:ARG`` → a backend, imported lazily.

Built-in kinds (``vpbench run --model``):

- ``hf:DIR`` or a plain ``DIR`` — a local Hugging Face checkpoint of the Qwen2.5-VL family;
- ``vllm:DIR`` — the same checkpoint served by vLLM in this process (optional extra ``[vllm]``);
- ``openai:URL[#MODEL]`` — any OpenAI-compatible ``/v1/chat/completions`` server;
- ``lmms:NAME[,k=v...]`` — an lmms-eval 0.7.x model class;
- ``replay:FILE`` — score responses made elsewhere;
- ``dummy:first`` / ``dummy:random[:SEED]`` — deterministic baselines.

Each kind maps to ``"module:function"``; the module is imported only when that kind is used (so
vllm / lmms-eval are needed only by their users). ``VPBENCH_BACKENDS="kind=module:function,..."``
adds out-of-tree kinds. An unknown kind is an error with a "did you mean".
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vpbench.config import suggest
from vpbench.errors import ConfigError
from vpbench.models.base import Backend

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class BackendOptions:
    """Options every backend receives; invariants checked here, before any model loads."""

    batch_size: int | None = None
    """Samples per generate call; None: the backend's own default (the hf backend batches where
    batching is exact, see ``HFQwenVLBackend``)."""
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False

    def batch_or(self, default: int) -> int:
        """The requested batch size, or ``default`` when none was given."""
        return default if self.batch_size is None else self.batch_size

    def __post_init__(self) -> None:
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ConfigError(f"--batch-size must be an integer >= 1, got {self.batch_size!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}{suggest(self.dtype, DTYPES)}")
        d = self.device
        if not (d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit())):
            raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {d!r}")


BackendFactory = Callable[[str, str, BackendOptions], Backend]  # (arg, full spec, options) -> backend

BACKENDS: dict[str, str] = {
    "hf": "vpbench.models.loader:_hf",
    "vllm": "vpbench.models.vllm_backend:from_spec",
    "openai": "vpbench.models.openai_compat:from_spec",
    "lmms": "vpbench.lmms.backend:from_spec",
    "replay": "vpbench.models.loader:_replay",
    "dummy": "vpbench.models.loader:_dummy",
}


def registered() -> dict[str, str]:
    """Built-in kinds plus those named in ``$VPBENCH_BACKENDS`` (``kind=module:function``, comma-separated)."""
    kinds = dict(BACKENDS)
    for item in filter(None, (s.strip() for s in os.environ.get("VPBENCH_BACKENDS", "").split(","))):
        kind, eq, target = item.partition("=")
        if not eq or ":" not in target:
            raise ConfigError(f"VPBENCH_BACKENDS entry {item!r}: expected kind=module:function")
        kinds[kind.strip()] = target.strip()
    return kinds


def _factory(kind: str, target: str) -> BackendFactory:
    module, _, func = target.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"backend '{kind}': cannot import {target} ({e})") from e


def load_backend(spec: str, options: BackendOptions) -> Backend:
    kind, sep, rest = spec.partition(":")
    kinds = registered()
    if sep and kind in kinds:
        return _factory(kind, kinds[kind])(rest, spec, options)
    if Path(spec).is_dir():
        return _hf(spec, spec, options)
    if sep and not Path(kind).anchor and "/" not in kind:
        raise ConfigError(f"--model {spec}: unknown backend '{kind}'{suggest(kind, kinds)}; "
                          f"known: {', '.join(sorted(kinds))}")
    raise ConfigError(
        f"--model {spec}: not a local checkpoint directory. vpbench loads models from local dirs only "
        f"(no hub downloads); other forms: {', '.join(k + ':...' for k in sorted(kinds))}")


def _hf(arg: str, spec: str, options: BackendOptions) -> Backend:
    if not Path(arg).is_dir():
        raise ConfigError(f"--model {spec}: {arg!r} is not a local checkpoint directory (vpbench loads "
                          f"models from local dirs only; no hub downloads)")
    from vpbench.models.hf_qwen_vl import HFQwenVLBackend

    return HFQwenVLBackend(Path(arg), dtype=options.dtype, device=options.device, batch_size=options.batch_size,
                           trust_remote_code=options.trust_remote_code)


def _replay(arg: str, spec: str, options: BackendOptions) -> Backend:
    from vpbench.models.replay import ReplayBackend

    return ReplayBackend(Path(arg))


def _dummy(arg: str, spec: str, options: BackendOptions) -> Backend:
    from vpbench.models.dummy import DummyBackend

    name, _, seed = arg.partition(":")
    try:
        return DummyBackend(name, seed=int(seed or 0))
    except ValueError as e:
        raise ConfigError(f"--model {spec}: the dummy seed must be an integer") from e
