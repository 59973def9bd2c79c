"""Turn SFT manifest records into model-ready examples (CPU work, safe in DataLoader workers).

Per example: decode frames as the model samples them (``decode_frames`` with the recipe's
Protocol), pick key frames (the manifest's, or the configured scorer + local maxima), build the
key-information-absent clip V' (``degrade``), patchify V and V', and tokenize the chat sequence
[system, user: <video> prompt, assistant: answer<|im_end|>] and the keyword text Z_t.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpbench.errors import DataError
from vpbench.keyframes.degrade import degrade
from vpbench.keyframes.select import SelectConfig, select_keys
from vpbench.models.qwen_inputs import (VisionPreproc, build_prompt, chat_renderer, load_chat_template,
                                        n_video_tokens, patchify_with, second_per_grid_t, truncated_rope_note)
from vpbench.protocol import Protocol
from vpbench.train.losses import IGNORE_INDEX
from vpbench.train.manifest import SFTExample
from vpbench.types import Frames, Message, Part


@dataclass(frozen=True, eq=False)
class PreparedExample:
    """pixel_values / pixel_values_deg [N, C*tps*p*p] float32, grid [3] int64 (same for both),
    second_per_grid_t, input_ids / labels [L] (labels IGNORE_INDEX outside the answer),
    keyword_ids [K], key_frames (indices into the sampled frames)."""

    id: str
    pixel_values: np.ndarray
    pixel_values_deg: np.ndarray
    grid_thw: np.ndarray
    second_per_grid_t: float
    n_video_tokens: int
    input_ids: list[int]
    labels: list[int]
    keyword_ids: list[int]
    key_frames: tuple[int, ...]


def protocol_from(data_cfg: Any) -> Protocol:
    """The sampling Protocol of the recipe's ``data`` section (fps / nframes / pixel budget)."""
    return Protocol(fps=data_cfg.fps, nframes=data_cfg.nframes, min_frames=data_cfg.min_frames,
                    max_frames=data_cfg.max_frames, min_pixels=data_cfg.min_pixels,
                    max_pixels=data_cfg.max_pixels, total_pixels=data_cfg.total_pixels)


class SFTDataset:
    """Map-style dataset over manifest records; ``__getitem__`` returns a ``PreparedExample``."""

    def __init__(self, examples: Sequence[SFTExample], data_cfg: Any, model_dir: str | Path,
                 tokenizer: Any, with_degraded: bool = True) -> None:
        from vpbench.keyframes.scorers import get_scorer

        self.examples = list(examples)
        self.cfg = data_cfg
        self.protocol = protocol_from(data_cfg)
        self.pre = VisionPreproc.from_pretrained(model_dir)
        self.tokenizer = tokenizer
        self.render = chat_renderer(tokenizer, load_chat_template(model_dir, tokenizer))
        self.select = SelectConfig(min_prominence=data_cfg.min_prominence, max_key_ratio=data_cfg.max_key_ratio)
        self.with_degraded = with_degraded
        needs_scorer = with_degraded and (data_cfg.key_frames == "scorer" or (
            data_cfg.key_frames == "auto" and any(e.key_frames is None for e in self.examples)))
        self.scorer = get_scorer(data_cfg.scorer, **dict(data_cfg.scorer_options)) if needs_scorer else None
        self._rope_warned = False
        self._frames: OrderedDict[tuple[str, float | None, float | None], Frames] = OrderedDict()
        self._cache_bytes = 0
        self.cache_hits = 0

    def frames(self, ex: SFTExample) -> Frames:
        """The clip of ``ex`` as the recipe samples it: decoded, or from the LRU cache of
        ``data.frame_cache_mb`` MiB (the arrays are read-only, so a cached clip cannot be altered)."""
        from vpbench.video.decode import decode_frames

        key = (str(ex.video), ex.start, ex.end)
        hit = self._frames.get(key)
        if hit is not None:
            self._frames.move_to_end(key)
            self.cache_hits += 1
            return hit
        frames = decode_frames(ex.video, self.protocol, ex.start, ex.end)
        if 0 < frames.array.nbytes <= self._cache_limit():
            self._remember(key, frames)
        return frames

    def _cache_limit(self) -> int:
        return int(self.cfg.frame_cache_mb * 2**20)

    def _remember(self, key: tuple[str, float | None, float | None], frames: Frames) -> None:
        """Keep ``frames`` (made read-only) as the newest cache entry; the oldest go beyond the limit."""
        frames.array.setflags(write=False)
        self._frames[key] = frames
        self._cache_bytes += frames.array.nbytes
        while self._cache_bytes > self._cache_limit():
            self._cache_bytes -= self._frames.popitem(last=False)[1].array.nbytes

    def prefill_frames(self, threads: int = 2) -> int:
        """Decode the manifest's clips (first use first) into the frame cache before training, ``threads``
        at a time (PyAV decoding and PIL resizing release the GIL: 1.6x on 2 cores), until the next clip
        would pass ``data.frame_cache_mb``; later ones are decoded when first used, as without it. The
        arrays are the ones ``frames`` would decode (decoding is deterministic). Returns clips cached."""
        from concurrent.futures import ThreadPoolExecutor

        from vpbench.video.decode import decode_frames

        limit = self._cache_limit()
        first_use = {(str(ex.video), ex.start, ex.end): ex for ex in self.examples}
        todo = [ex for key, ex in first_use.items() if key not in self._frames]
        if limit <= 0 or not todo:
            return 0
        done = 0
        pool = ThreadPoolExecutor(max(1, threads))
        try:
            for ex, frames in zip(todo, pool.map(lambda e: decode_frames(e.video, self.protocol, e.start, e.end),
                                                 todo)):
                if self._cache_bytes + frames.array.nbytes > limit:
                    break
                self._remember((str(ex.video), ex.start, ex.end), frames)
                done += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # full cache or an error: the queued decodes are dropped
        return done

    def __len__(self) -> int:
        return len(self.examples)

    def key_frames(self, ex: SFTExample, frames: np.ndarray) -> tuple[int, ...]:
        """Key frame indices of ``ex`` (manifest or scorer); DataError when none is after frame 0, as
        ``degrade`` keeps frame 0 (V' would equal V and the contrastive pair would be void)."""
        keys = self._key_frames(ex, frames)
        if not any(k > 0 for k in keys):
            src = "the scorer" if self.scorer is not None and (self.cfg.key_frames == "scorer" or ex.key_frames is None) \
                else "the manifest"
            raise DataError(f"record {ex.id!r}: no key frame after frame 0 (key_frames {list(keys)} from {src}), so "
                            "the key-information-absent clip V' equals V; drop the record (re-craft the manifest "
                            "with `vpbench data craft`) or lower data.min_prominence")
        return keys

    def _key_frames(self, ex: SFTExample, frames: np.ndarray) -> tuple[int, ...]:
        mode = self.cfg.key_frames
        if mode == "manifest" and ex.key_frames is None:
            raise DataError(f"record {ex.id!r}: data.key_frames=manifest but the record has no key_frames; "
                            "set data.key_frames=auto or scorer")
        if mode != "scorer" and ex.key_frames is not None:
            n = frames.shape[0]
            if (ex.n_frames is not None and ex.n_frames != n) or any(i >= n for i in ex.key_frames):
                raise DataError(f"record {ex.id!r}: key_frames {list(ex.key_frames)} were computed for "
                                f"{ex.n_frames} frames but the recipe samples {n}; the sampling settings "
                                "differ from the manifest's: set data.key_frames=scorer")
            return tuple(ex.key_frames)
        assert self.scorer is not None
        return tuple(select_keys(self.scorer.score(frames, list(ex.keywords)), self.select))

    def __getitem__(self, i: int) -> PreparedExample:
        ex = self.examples[i]
        frames = self.frames(ex)
        keys = self.key_frames(ex, frames.array) if self.with_degraded else ()
        pv, grid = patchify_with(frames.array, self.pre)
        pv_deg = patchify_with(degrade(frames.array, keys), self.pre)[0] if self.with_degraded else pv[:0]
        n_tok = n_video_tokens(grid, self.pre.merge_size)
        spgt = second_per_grid_t(frames, self.pre.temporal_patch_size)
        if not self._rope_warned and (note := truncated_rope_note(spgt)):
            import warnings

            warnings.warn(f"record {ex.id!r} ({ex.video}): {note}", RuntimeWarning, stacklevel=2)
            self._rope_warned = True
        msgs = (Message("user", (Part("video"), Part("text", ex.prompt))),)
        prompt = build_prompt(msgs, self.render, n_tok)
        tok = self.tokenizer
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tok(ex.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = prompt_ids + answer_ids
        if len(ids) > self.cfg.max_length:
            raise DataError(f"record {ex.id!r}: {len(ids)} tokens > data.max_length={self.cfg.max_length}; "
                            "lower data.max_pixels / fps or raise data.max_length")
        kw = tok(self.cfg.keyword_separator.join(ex.keywords), add_special_tokens=False,
                 split_special_tokens=True)["input_ids"]
        return PreparedExample(
            id=ex.id, pixel_values=pv, pixel_values_deg=pv_deg, grid_thw=grid[0],
            second_per_grid_t=spgt, n_video_tokens=n_tok,
            input_ids=ids, labels=[IGNORE_INDEX] * len(prompt_ids) + answer_ids, keyword_ids=kw,
            key_frames=keys,
        )
