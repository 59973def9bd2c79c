"""Frame scorers (RECIPE §1.2): ``score(frames [T, H, W, 3] uint8, keywords) -> np.ndarray [T] float64``.

* ``blip2`` (default, ``vpbench.keyframes.blip2``): BLIP-2 ITC similarity, max over query vectors.
* ``clip``: cosine between the CLIP image embedding of each frame and the mean of the L2-normalised keyword
  text embeddings, re-normalised.
* ``random`` (Ablation A): i.i.d. uniform [0, 1) scores, seeded by (seed, keywords, frame bytes): deterministic
  for a given input, different across clips.
* ``motion_energy`` (procedural data only): ``s[0] = 0``, ``s[t] = mean |V[t] - V[t-1]|`` over H, W and channels
  (in [0, 255]); keywords are ignored.

``get_scorer(name, **opts)`` builds one from the registry; unknown names/options raise ConfigError.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from vpbench.config import check_keys, suggest
from vpbench.errors import ConfigError, DataError


@runtime_checkable
class FrameScorer(Protocol):
    """Scores each frame of a clip against a keyword set; higher = more relevant."""

    name: str

    def score(self, frames: np.ndarray, keywords: list[str]) -> np.ndarray:
        """frames: uint8 [T, H, W, 3]; keywords: phrases → float64 [T]."""
        ...


def check_frames(frames: np.ndarray, scorer: str) -> np.ndarray:
    """Validate a clip for scoring: a uint8 array [T, H, W, 3] with T >= 1."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] < 1:
        raise DataError(f"scorer {scorer!r}: frames must be uint8 [T>=1, H, W, 3], got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise DataError(f"scorer {scorer!r}: frames must be uint8 RGB, got dtype {arr.dtype}; convert before scoring")
    return arr


def check_keywords(keywords: Sequence[str], scorer: str) -> list[str]:
    """Validate keywords for a semantic scorer: at least one non-empty string."""
    if isinstance(keywords, str):
        raise DataError(f"scorer {scorer!r}: keywords must be a list of phrases, got a single string {keywords!r}")
    kws = [k.strip() for k in keywords if isinstance(k, str)]
    if len(kws) != len(list(keywords)) or not kws or not all(kws):
        raise DataError(
            f"scorer {scorer!r}: needs >= 1 non-empty keyword string, got {list(keywords)!r}; "
            "run keyword extraction first (vpbench.keyframes.keywords)"
        )
    return kws


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """Mean of the L2-normalised rows of ``vectors`` [K, D], re-normalised → [D]."""
    v = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    m = v.mean(axis=0)
    norm = np.linalg.norm(m)
    if norm == 0:
        raise DataError("keyword embeddings cancel out (zero mean direction); use different keywords")
    return m / norm


@dataclass(frozen=True)
class MotionEnergyConfig:
    pass


class MotionEnergyScorer:
    """``s[t] = mean |V[t] - V[t-1]|`` (uint8 units), ``s[0] = 0``."""

    name = "motion_energy"

    def __init__(self, cfg: MotionEnergyConfig = MotionEnergyConfig()) -> None:
        self.cfg = cfg

    def score(self, frames: np.ndarray, keywords: list[str]) -> np.ndarray:
        arr = check_frames(frames, self.name).astype(np.int16)
        out = np.zeros(arr.shape[0], dtype=np.float64)
        if arr.shape[0] > 1:
            out[1:] = np.abs(arr[1:] - arr[:-1]).mean(axis=(1, 2, 3), dtype=np.float64)
        return out


@dataclass(frozen=True)
class RandomConfig:
    seed: int = 0


class RandomScorer:
    """Uniform [0, 1) scores from ``np.random.default_rng`` seeded by (seed, keywords, frame content)."""

    name = "random"

    def __init__(self, cfg: RandomConfig = RandomConfig()) -> None:
        self.cfg = cfg

    def score(self, frames: np.ndarray, keywords: list[str]) -> np.ndarray:
        arr = check_frames(frames, self.name)
        h = hashlib.blake2b(digest_size=8)
        h.update(repr(arr.shape).encode())
        h.update("\x00".join(keywords).encode("utf-8"))
        h.update(np.ascontiguousarray(arr).tobytes())
        rng = np.random.default_rng([int(self.cfg.seed), int.from_bytes(h.digest(), "little")])
        return rng.random(arr.shape[0])


@dataclass(frozen=True)
class ClipConfig:
    model_dir: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 32


class ClipScorer:
    """transformers ``CLIPModel`` from a local directory (with its tokenizer and image processor)."""

    name = "clip"

    def __init__(self, cfg: ClipConfig) -> None:
        if not cfg.model_dir:
            raise ConfigError("scorer 'clip' needs model_dir= (a local CLIP checkpoint directory)")
        self.cfg = cfg
        self._loaded: tuple[Any, Any, Any] | None = None

    def _load(self) -> tuple[Any, Any, Any]:
        if self._loaded is None:
            from vpbench.keyframes.blip2 import load_local

            from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

            model = load_local(CLIPModel, self.cfg.model_dir, self.cfg.device, self.cfg.dtype, self.name)
            tok = load_local(AutoTokenizer, self.cfg.model_dir, None, None, self.name)
            proc = load_local(AutoImageProcessor, self.cfg.model_dir, None, None, self.name)
            self._loaded = (model, tok, proc)
        return self._loaded

    def embed_keywords(self, keywords: list[str]) -> np.ndarray:
        """Mean direction of the normalised keyword text embeddings → [D]."""
        import torch

        model, tok, _ = self._load()
        enc = tok(keywords, padding=True, return_tensors="pt").to(self.cfg.device)
        with torch.inference_mode():
            txt = _features(model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))
        return mean_direction(txt.float().cpu().numpy().astype(np.float64))

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """L2-normalised image embeddings [T, D], computed in batches of ``batch_size``."""
        import torch

        model, _, proc = self._load()
        out = []
        for i in range(0, frames.shape[0], self.cfg.batch_size):
            pix = proc(images=list(frames[i : i + self.cfg.batch_size]), return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                feats = _features(model.get_image_features(pixel_values=pix.to(self.cfg.device, model.dtype)))
            out.append(feats.float().cpu().numpy().astype(np.float64))
        img = np.concatenate(out)
        return img / np.linalg.norm(img, axis=-1, keepdims=True)

    def score(self, frames: np.ndarray, keywords: list[str]) -> np.ndarray:
        arr = check_frames(frames, self.name)
        k = self.embed_keywords(check_keywords(keywords, self.name))
        return self.embed_frames(arr) @ k


def _features(out: Any) -> Any:
    """The projected embeddings [N, projection_dim] from ``CLIPModel.get_text_features`` / ``get_image_features``.

    transformers 4.x returns that tensor; 5.x returns a ``BaseModelOutputWithPooling`` whose ``pooler_output``
    holds the *projected* embeddings (``last_hidden_state`` stays un-projected).
    """
    import torch

    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if not isinstance(pooled, torch.Tensor):
        raise TypeError(f"unexpected CLIP features output {type(out).__name__}: no tensor and no pooler_output")
    return pooled


def _blip2_factory(**opts: Any) -> FrameScorer:
    from vpbench.keyframes.blip2 import Blip2ScorerConfig, Blip2Scorer

    return Blip2Scorer(_make_config(Blip2ScorerConfig, opts, "blip2"))


_REGISTRY: dict[str, tuple[type | None, Callable[..., FrameScorer]]] = {
    "blip2": (None, _blip2_factory),
    "clip": (ClipConfig, ClipScorer),
    "random": (RandomConfig, RandomScorer),
    "motion_energy": (MotionEnergyConfig, MotionEnergyScorer),
}


def scorer_names() -> list[str]:
    return sorted(_REGISTRY)


def _make_config(cls: type, opts: dict[str, Any], name: str) -> Any:
    check_keys(opts, [f.name for f in dataclasses.fields(cls)], f"scorer '{name}' options")
    try:
        return cls(**opts)
    except TypeError as e:  # pragma: no cover - check_keys catches unknown keys first
        raise ConfigError(f"bad options for scorer '{name}': {e}") from e


def get_scorer(name: str, **opts: Any) -> FrameScorer:
    """Build a registered scorer: ``blip2`` (model_dir=...), ``clip`` (model_dir=...), ``random``, ``motion_energy``."""
    if name not in _REGISTRY:
        known = ", ".join(scorer_names())
        raise ConfigError(f"unknown frame scorer '{name}'{suggest(name, _REGISTRY)}; known: {known}")
    cfg_cls, factory = _REGISTRY[name]
    if cfg_cls is None:
        return factory(**opts)
    return factory(_make_config(cfg_cls, opts, name))
