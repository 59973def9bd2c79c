"""The RL manifest (``rl.jsonl`` of ``vpbench data craft``) and its model-ready prompts.

One JSON object per line (``vpbench/craft/process.py`` writes it)::

    {"id": "clip7/qa0", "video": "clips/7.mp4", "start": null, "end": null,
     "prompt": "How many times ...?\nAnswer with a number only.", "answer": "3",
     "answer_type": "choice" | "number" | "yesno" | "open",
     "keywords": ["bounce"], "key_frames": [2, 4, 7],   # indices into the SAMPLED frames
     "n_frames": 16, "meta": {...}}                      # optional

Unknown keys are an error with a "did you mean"; so are duplicate ids. ``RLDataset[i]`` decodes
the frames as the recipe samples them, builds the key-information-absent clip of the SAME frames
(``degrade``), optionally a shuffled-frame clip (T-GRPO comparator), patchifies them, and
tokenizes the chat prompt and its refeed variant (the prompt + the refeed instruction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpbench.config import suggest
from vpbench.errors import DataError
from vpbench.train.manifest import read_jsonl_records
from vpbench.train.rewards import ANSWER_TYPES

FIELDS = ("id", "video", "start", "end", "prompt", "answer", "answer_type", "keywords", "key_frames", "n_frames",
          "meta")
REQUIRED = ("id", "video", "prompt", "answer", "answer_type")


@dataclass(frozen=True)
class RLExample:
    id: str
    video: str  # resolved path
    prompt: str
    answer: str
    answer_type: str
    keywords: tuple[str, ...] = ()
    start: float | None = None
    end: float | None = None
    key_frames: tuple[int, ...] | None = None
    n_frames: int | None = None


def _bad(path: Path, line: int, rid: Any, problem: str) -> DataError:
    who = f" (id {rid!r})" if rid is not None else ""
    return DataError(f"{path}:{line}{who}: {problem}; fix the RL manifest (schema: vpbench/train/rl_data.py)")


def _check_types(obj: dict[str, Any], path: Path, line: int, rid: Any) -> None:
    for key in ("id", "video", "prompt", "answer"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise _bad(path, line, rid, f"{key!r} must be a non-empty string")
    if obj["answer_type"] not in ANSWER_TYPES:
        raise _bad(path, line, rid, f"'answer_type' must be one of {ANSWER_TYPES}, got {obj['answer_type']!r}")
    kws = obj.get("keywords", [])
    if not isinstance(kws, list) or not all(isinstance(k, str) and k.strip() for k in kws):
        raise _bad(path, line, rid, "'keywords' must be a list of non-empty strings")
    for key in ("start", "end"):
        v = obj.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0):
            raise _bad(path, line, rid, f"{key!r} must be a number of seconds >= 0 or null, got {v!r}")
    kf = obj.get("key_frames")
    if kf is not None and (not isinstance(kf, list)
                           or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in kf)):
        raise _bad(path, line, rid, "'key_frames' must be a list of frame indices >= 0 (or absent)")
    nf = obj.get("n_frames")
    if nf is not None and (isinstance(nf, bool) or not isinstance(nf, int) or nf < 1):
        raise _bad(path, line, rid, "'n_frames' must be an integer >= 1 (or absent)")


def parse_rl_record(obj: Any, path: Path, line: int, root: Path) -> RLExample:
    if not isinstance(obj, dict):
        raise _bad(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
    rid = obj.get("id")
    for key in obj:
        if key not in FIELDS:
            raise _bad(path, line, rid, f"unknown key {key!r}{suggest(key, FIELDS)}")
    for key in REQUIRED:
        if key not in obj:
            raise _bad(path, line, rid, f"missing required key {key!r}")
    _check_types(obj, path, line, rid)
    video = Path(obj["video"])
    kf = obj.get("key_frames")
    return RLExample(id=obj["id"], video=str(video if video.is_absolute() else root / video), prompt=obj["prompt"],
                     answer=obj["answer"].strip(), answer_type=obj["answer_type"],
                     keywords=tuple(k.strip() for k in obj.get("keywords", [])),
                     start=None if obj.get("start") is None else float(obj["start"]),
                     end=None if obj.get("end") is None else float(obj["end"]),
                     key_frames=None if kf is None else tuple(kf), n_frames=obj.get("n_frames"))


def read_rl_manifest(path: str | Path, video_root: str | Path | None = None) -> list[RLExample]:
    """Parse and validate an RL manifest; DataError naming the file, the line and the id."""
    return read_jsonl_records(path, video_root, parse_rl_record, "RL manifest",
                              "set data.manifest to the rl.jsonl `vpbench data craft` wrote", _bad)


@dataclass(frozen=True, eq=False)
class VideoInput:
    """One clip as the policy sees it: frames [T, H, W, 3] uint8 (what vLLM takes), pixel_values
    [N, C·tps·p²] float32, grid [1, 3] int64, second_per_grid_t, n_video_tokens."""

    frames: np.ndarray
    pixel_values: np.ndarray
    grid: np.ndarray
    second_per_grid_t: float
    n_video_tokens: int


@dataclass(frozen=True, eq=False)
class RLPrepared:
    """One RL prompt: ``full`` / ``degraded`` (same frames, key frames replaced) / ``shuffled``
    (T-GRPO, or None) clips; chat prompt token ids without and with the refeed instruction."""

    example: RLExample
    full: VideoInput
    degraded: VideoInput
    shuffled: VideoInput | None
    prompt_ids: tuple[int, ...]
    refeed_prompt_ids: tuple[int, ...]
    refeed_prompt: str
    key_frames: tuple[int, ...]


class RLDataset:
    """Map-style dataset over RL records (``data`` = the recipe's data section)."""

    def __init__(self, examples: Sequence[RLExample], data_cfg: Any, model_dir: str | Path, tokenizer: Any,
                 refeed_instruction: str, shuffled: bool = False, seed: int = 0) -> None:
        from vpbench.keyframes.scorers import get_scorer
        from vpbench.keyframes.select import SelectConfig
        from vpbench.models.qwen_inputs import VisionPreproc, chat_renderer, load_chat_template
        from vpbench.train.data import protocol_from

        self.examples = list(examples)
        self.cfg = data_cfg
        self.protocol = protocol_from(data_cfg)
        self.pre = VisionPreproc.from_pretrained(model_dir)
        self.tokenizer = tokenizer
        self.render = chat_renderer(tokenizer, load_chat_template(model_dir, tokenizer))
        self.instruction = refeed_instruction
        self.shuffled, self.seed = shuffled, seed
        self.select = SelectConfig(min_prominence=data_cfg.min_prominence, max_key_ratio=data_cfg.max_key_ratio)
        needs = data_cfg.key_frames == "scorer" or (data_cfg.key_frames == "auto"
                                                     and any(e.key_frames is None for e in self.examples))
        self.scorer = get_scorer(data_cfg.scorer, **dict(data_cfg.scorer_options)) if needs else None

    def __len__(self) -> int:
        return len(self.examples)

    def key_frames(self, ex: RLExample, frames: np.ndarray) -> tuple[int, ...]:
        from vpbench.keyframes.select import select_keys

        n = frames.shape[0]
        if self.cfg.key_frames == "manifest" and ex.key_frames is None:
            raise DataError(f"RL record {ex.id!r}: data.key_frames=manifest but the record has no key_frames; set "
                            "data.key_frames=auto or scorer")
        if self.cfg.key_frames != "scorer" and ex.key_frames is not None:
            if (ex.n_frames is not None and ex.n_frames != n) or any(i >= n for i in ex.key_frames):
                raise DataError(f"RL record {ex.id!r}: key_frames {list(ex.key_frames)} index frames the craft "
                                f"protocol sampled, but the recipe samples {n} frames; make data.fps/nframes/pixels "
                                "equal the craft config's protocol, or set data.key_frames=scorer")
            keys = tuple(ex.key_frames)
        else:
            assert self.scorer is not None
            keys = tuple(select_keys(self.scorer.score(frames, list(ex.keywords) or [ex.answer]), self.select))
        if not any(k > 0 for k in keys):
            raise DataError(f"RL record {ex.id!r}: no key frame after frame 0 (key_frames {list(keys)}), so the "
                            "key-information-absent clip equals the clip; drop the record or re-craft the manifest")
        return keys

    def _video(self, frames: np.ndarray, fr: Any) -> VideoInput:
        from vpbench.models.qwen_inputs import n_video_tokens, patchify_with, second_per_grid_t

        pv, grid = patchify_with(frames, self.pre)
        return VideoInput(frames=frames, pixel_values=pv, grid=grid, n_video_tokens=n_video_tokens(grid,
                          self.pre.merge_size), second_per_grid_t=second_per_grid_t(fr, self.pre.temporal_patch_size))

    def prompt_ids(self, text: str, n_tok: int) -> tuple[int, ...]:
        from vpbench.models.qwen_inputs import build_prompt
        from vpbench.types import Message, Part

        prompt = build_prompt((Message("user", (Part("video"), Part("text", text))),), self.render, n_tok)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) > self.cfg.max_prompt_length:
            raise DataError(f"prompt of {len(ids)} tokens > data.max_prompt_length={self.cfg.max_prompt_length}; "
                            "lower data.max_pixels / fps or raise data.max_prompt_length")
        return tuple(ids)

    def __getitem__(self, i: int) -> RLPrepared:
        from vpbench.keyframes.degrade import degrade
        from vpbench.video.decode import decode_frames

        ex = self.examples[i]
        fr = decode_frames(ex.video, self.protocol, ex.start, ex.end)
        keys = self.key_frames(ex, fr.array)
        full = self._video(fr.array, fr)
        deg = self._video(degrade(fr.array, keys), fr)
        shuf = None
        if self.shuffled:
            perm = np.random.default_rng([self.seed, i]).permutation(fr.array.shape[0])
            shuf = self._video(fr.array[perm], fr)
        refeed = f"{ex.prompt.rstrip()}\n{self.instruction}"
        return RLPrepared(example=ex, full=full, degraded=deg, shuffled=shuf,
                          prompt_ids=self.prompt_ids(ex.prompt, full.n_video_tokens),
                          refeed_prompt_ids=self.prompt_ids(refeed, full.n_video_tokens), refeed_prompt=refeed,
                          key_frames=keys)
