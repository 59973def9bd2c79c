"""Parse a ``--model`` spec into a backend.

- ``replay:FILE`` — score responses made elsewhere;
- ``dummy:first`` / ``dummy:random[:SEED]`` — deterministic baselines;
- ``hf:DIR`` or a plain ``DIR`` — a local Hugging Face checkpoint of the Qwen2.5-VL family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpbench.errors import ConfigError
from vpbench.models.base import Backend


@dataclass(frozen=True)
class BackendOptions:
    batch_size: int = 1
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False


def load_backend(spec: str, options: BackendOptions) -> Backend:
    kind, sep, rest = spec.partition(":")
    if sep and kind == "replay":
        from vpbench.models.replay import ReplayBackend

        return ReplayBackend(Path(rest))
    if sep and kind == "dummy":
        name, _, seed = rest.partition(":")
        from vpbench.models.dummy import DummyBackend

        try:
            return DummyBackend(name, seed=int(seed or 0))
        except ValueError as e:
            raise ConfigError(f"--model {spec}: the dummy seed must be an integer") from e
    path = Path(rest if (sep and kind == "hf") else spec)
    if not path.is_dir():
        raise ConfigError(
            f"--model {spec}: not a local checkpoint directory. vpbench loads models from local dirs "
            f"only (no hub downloads); other forms: replay:FILE, dummy:first, dummy:random[:SEED]"
        )
    from vpbench.models.hf_qwen_vl import HFQwenVLBackend

    return HFQwenVLBackend(path, dtype=options.dtype, device=options.device, batch_size=options.batch_size,
                           trust_remote_code=options.trust_remote_code)
