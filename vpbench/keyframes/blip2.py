"""BLIP-2 ITC frame scorer (RECIPE §1.2, paper eq. 1).

Uses the image-text-contrastive (ITC) space of a BLIP-2 retrieval checkpoint (e.g. ``Salesforce/blip2-itm-vit-g``
downloaded beforehand, or ``tiny_blip2.build_tiny_blip2`` for tests). transformers 4.57.6 exposes it as

* ``Blip2VisionModelWithProjection(pixel_values).image_embeds`` → [T, Q, D], L2-normalised per query
  (ViT → Q-Former queries → ``vision_projection``);
* ``Blip2TextModelWithProjection(input_ids, attention_mask).text_embeds`` → [K, L, D], L2-normalised per token;
  the text vector is position 0 ([CLS]).

Both load from a ``Blip2ForImageTextRetrieval`` checkpoint directory (same parameter names; the unused parts,
e.g. ``itm_head``, are skipped). This is the same computation as
``Blip2ForImageTextRetrieval(..., use_image_text_matching_head=False).logits_per_image`` (max over queries of
``img_q · txt_cls``), except that the text side is the pooled keyword vector:

    k̄   = normalize(mean_k normalize(text_embeds[k, 0]))      # [D]
    s[t] = max_q  image_embeds[t, q] · k̄                        # cosine (both unit vectors)

``query_reduce = "mean"`` (an ablation, not the default) averages over queries instead of taking the max.
``Blip2Model.get_text_features`` / ``get_image_features`` are *not* used: they are not in the ITC space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vpbench.errors import ConfigError, DataError, MissingMedia
from vpbench.keyframes.scorers import check_frames, check_keywords, mean_direction

_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Blip2ScorerConfig:
    """``model_dir``: local BLIP-2 retrieval checkpoint (config, weights, tokenizer, image processor)."""

    model_dir: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 32
    query_reduce: str = "max"

    def __post_init__(self) -> None:
        if self.query_reduce not in ("max", "mean"):
            raise ConfigError(f"blip2.query_reduce must be 'max' or 'mean', got {self.query_reduce!r}")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"blip2.dtype must be one of {_DTYPES}, got {self.dtype!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(f"blip2.batch_size must be a positive integer, got {self.batch_size!r}")


def load_local(cls: Any, model_dir: str, device: str | None, dtype: str | None, scorer: str) -> Any:
    """``cls.from_pretrained(model_dir)`` offline, with a clear error when the directory is missing/incomplete.

    ``device``/``dtype`` given → a model moved there and put in eval mode; otherwise (tokenizers, processors)
    the object as loaded.
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise MissingMedia(
            f"scorer {scorer!r}: model_dir {model_dir!r} is not a directory; download the checkpoint "
            "(config, weights, tokenizer, preprocessor) to a local folder and pass its path"
        )
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        import torch

        kwargs["dtype"] = getattr(torch, dtype)
    if getattr(cls, "__name__", "") == "AutoImageProcessor":
        import transformers

        # the slow (PIL/numpy) processor: no torchvision here; 5.x names it backend="pil" (use_fast is deprecated)
        if int(transformers.__version__.split(".")[0]) >= 5:
            kwargs["backend"] = "pil"
        else:
            kwargs["use_fast"] = False
    try:
        obj = cls.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as e:
        raise MissingMedia(
            f"scorer {scorer!r}: could not load {getattr(cls, '__name__', cls)} from {model_dir!r}: {e}"
        ) from e
    if device is not None:
        obj = obj.to(device).eval()
    return obj


class Blip2Scorer:
    """BLIP-2 ITC frame–keyword similarity; models are loaded lazily on first use."""

    name = "blip2"

    def __init__(self, cfg: Blip2ScorerConfig) -> None:
        if not cfg.model_dir:
            raise ConfigError("scorer 'blip2' needs model_dir= (a local BLIP-2 retrieval checkpoint directory)")
        self.cfg = cfg
        self._vision: Any = None
        self._text: Any = None
        self._tok: Any = None
        self._proc: Any = None

    def _load(self) -> None:
        if self._vision is not None:
            return
        from transformers import (
            AutoImageProcessor,
            AutoTokenizer,
            Blip2TextModelWithProjection,
            Blip2VisionModelWithProjection,
        )
        from transformers.utils import logging as hf_logging

        c = self.cfg
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "some weights were not used" is expected (shared retrieval checkpoint)
        try:
            self._vision = load_local(Blip2VisionModelWithProjection, c.model_dir, c.device, c.dtype, self.name)
            self._text = load_local(Blip2TextModelWithProjection, c.model_dir, c.device, c.dtype, self.name)
        finally:
            hf_logging.set_verbosity(level)
        if not getattr(self._text.config.qformer_config, "use_qformer_text_input", False):
            raise MissingMedia(
                f"scorer 'blip2': {c.model_dir!r} has no Q-Former text branch (use_qformer_text_input=false); "
                "use a BLIP-2 image-text retrieval checkpoint such as Salesforce/blip2-itm-vit-g"
            )
        self._tok = load_local(AutoTokenizer, c.model_dir, None, None, self.name)
        self._proc = load_local(AutoImageProcessor, c.model_dir, None, None, self.name)

    def embed_keywords(self, keywords: list[str]) -> np.ndarray:
        """Pooled keyword vector k̄ [D]: mean of the normalised [CLS] text embeddings, re-normalised."""
        import torch

        self._load()
        enc = self._tok(keywords, padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = self._text(
                input_ids=enc["input_ids"].to(self.cfg.device),
                attention_mask=enc["attention_mask"].to(self.cfg.device),
            )
        cls = out.text_embeds[:, 0, :].float().cpu().numpy().astype(np.float64)
        return mean_direction(cls)

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """Per-query image embeddings [T, Q, D] (unit vectors), in batches of ``batch_size`` frames."""
        import torch

        self._load()
        parts = []
        for i in range(0, frames.shape[0], self.cfg.batch_size):
            pix = self._proc(images=list(frames[i : i + self.cfg.batch_size]), return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                emb = self._vision(pixel_values=pix.to(self.cfg.device, self._vision.dtype)).image_embeds
            parts.append(emb.float().cpu().numpy().astype(np.float64))
        return np.concatenate(parts)

    def score(self, frames: np.ndarray, keywords: list[str]) -> np.ndarray:
        """frames uint8 [T, H, W, 3], keywords → s [T] = reduce_q cos(f[t, q], k̄)."""
        arr = check_frames(frames, self.name)
        k = self.embed_keywords(check_keywords(keywords, self.name))
        sims = self.embed_frames(arr) @ k  # [T, Q]
        if sims.shape[0] != arr.shape[0]:
            raise DataError(f"scorer 'blip2': got {sims.shape[0]} embeddings for {arr.shape[0]} frames")
        return sims.max(axis=1) if self.cfg.query_reduce == "max" else sims.mean(axis=1)
