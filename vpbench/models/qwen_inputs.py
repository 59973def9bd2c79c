"""Qwen2.5-VL model inputs built by hand: video patchify, preprocessing config, chat prompt.

No HF video processor can be built here (it needs torchvision), so this module reproduces what
transformers' ``Qwen2VLImageProcessor`` does to videos after resizing (rescale 1/255, CLIP
normalisation, padding T to a multiple of ``temporal_patch_size`` by repeating the last frame,
then the patch order the vision tower expects). The engine resizes frames (``smart_resize``)
before they get here, so this module never resizes: frame sides must be multiples of
``patch_size * merge_size`` (28).

Only numpy is imported at module level; the prompt helpers take the tokenizer as an argument.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vpbench.errors import ConfigError
from vpbench.types import Frames, Message

OPENAI_CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

VIDEO_PAD = "<|video_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"

# The processor's default when no fps is given (processing_qwen2_5_vl.py: fps defaults to 2.0).
DEFAULT_VIDEO_FPS = 2.0


@dataclass(frozen=True)
class VisionPreproc:
    """The vision preprocessing values of a checkpoint (``preprocessor_config.json``)."""

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    image_std: tuple[float, float, float] = OPENAI_CLIP_STD
    rescale_factor: float = 1 / 255

    @property
    def factor(self) -> int:
        """Frame sides must be multiples of this (28 for Qwen2.5-VL)."""
        return self.patch_size * self.merge_size

    @classmethod
    def from_pretrained(cls, model_dir: Path | str) -> "VisionPreproc":
        """Read ``preprocessor_config.json`` from a local checkpoint dir.

        Missing keys take the Qwen2.5-VL defaults; a missing file or a setting this module does
        not implement (``do_rescale``/``do_normalize`` false) raises ``ConfigError``.
        """
        path = Path(model_dir) / "preprocessor_config.json"
        if not path.is_file():
            raise ConfigError(
                f"{path} not found: a Qwen2.5-VL checkpoint dir must hold preprocessor_config.json "
                "(patch_size, merge_size, temporal_patch_size, image_mean, image_std)"
            )
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: invalid JSON ({e})") from e
        for flag in ("do_rescale", "do_normalize"):
            if raw.get(flag, True) is False:
                raise ConfigError(f"{path}: {flag}=false is not supported by vpbench's Qwen patchify")
        d = cls()
        return cls(
            patch_size=int(raw.get("patch_size", d.patch_size)),
            merge_size=int(raw.get("merge_size", d.merge_size)),
            temporal_patch_size=int(raw.get("temporal_patch_size", d.temporal_patch_size)),
            image_mean=tuple(float(v) for v in raw.get("image_mean", d.image_mean)),  # type: ignore[arg-type]
            image_std=tuple(float(v) for v in raw.get("image_std", d.image_std)),  # type: ignore[arg-type]
            rescale_factor=float(raw.get("rescale_factor", d.rescale_factor)),
        )


def normalize_lut(
    image_mean: Sequence[float], image_std: Sequence[float], rescale_factor: float
) -> np.ndarray:
    """Every value HF's rescale + normalise can produce, per channel: float32 [3, 256].

    ``lut[c, v] = (float32(float64(v) * rescale_factor) - mean[c]) / std[c]`` with the same
    float64 rescale and float32 normalise as transformers (``image_transforms.rescale`` then
    ``normalize``). Each output element depends only on its own uint8 input and channel, so
    looking it up is bit-identical to computing it, without a float64 copy of the frames.
    """
    levels = (np.arange(256, dtype=np.float64) * rescale_factor).astype(np.float32)
    mean = np.asarray(image_mean, dtype=np.float32).reshape(3, 1)
    std = np.asarray(image_std, dtype=np.float32).reshape(3, 1)
    return np.ascontiguousarray((levels[None, :] - mean) / std, dtype=np.float32)


def patchify_video(
    frames: np.ndarray,
    *,
    patch_size: int = 14,
    merge_size: int = 2,
    temporal_patch_size: int = 2,
    image_mean: Sequence[float] = OPENAI_CLIP_MEAN,
    image_std: Sequence[float] = OPENAI_CLIP_STD,
    rescale_factor: float = 1 / 255,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn RGB frames into Qwen2.5-VL video patches.

    frames: [T, H, W, 3] uint8, H and W multiples of ``patch_size * merge_size``.
    Returns ``(pixel_values_videos [N, 3*tps*p*p] float32, video_grid_thw [1, 3] int64)`` with
    grid ``(t, h, w) = (ceil(T/tps), H/p, W/p)`` and ``N = t*h*w``. An odd T is padded by
    repeating the last frame, as the HF processor does. Values are the HF slow processor's bit
    for bit (float64 rescale, float32 normalise), read from a 256-entry table per channel
    (:func:`normalize_lut`) after the uint8 frames are put in patch order: one float32 output
    array, no float64 or float32 copy of the frames.
    """
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise ValueError(f"frames must be a [T,H,W,3] array, got {shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    n_frames, height, width, _ = frames.shape
    factor = patch_size * merge_size
    if n_frames == 0:
        raise ValueError("frames: T must be >= 1")
    if height % factor or width % factor or height == 0 or width == 0:
        raise ValueError(
            f"frame size {height}x{width} is not a multiple of {factor} (patch {patch_size} x merge "
            f"{merge_size}); frames must be resized with smart_resize before patchify"
        )
    grid_t = -(-n_frames // temporal_patch_size)
    grid_h, grid_w = height // patch_size, width // patch_size
    if n_frames % temporal_patch_size:  # pad T by repeating the last frame (as HF does after normalising)
        pad = temporal_patch_size - n_frames % temporal_patch_size
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
    # uint8 [T, H, W, C] -> patch order [gt, gh/m, gw/m, m, m, C, tps, p, p], one cheap uint8 copy
    u8 = np.ascontiguousarray(frames.reshape(
        grid_t, temporal_patch_size, grid_h // merge_size, merge_size, patch_size,
        grid_w // merge_size, merge_size, patch_size, 3,
    ).transpose(0, 2, 5, 3, 6, 8, 1, 4, 7)).reshape(grid_t * grid_h * grid_w, 3, -1)
    lut = normalize_lut(image_mean, image_std, rescale_factor)  # [3, 256] float32
    out = np.empty(u8.shape, dtype=np.float32)  # [N, C, tps*p*p]
    for c in range(3):
        out[:, c, :] = lut[c][u8[:, c, :]]
    flat = out.reshape(grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size * patch_size)
    return flat, np.array([[grid_t, grid_h, grid_w]], dtype=np.int64)


def patchify_with(frames: np.ndarray, pre: VisionPreproc) -> tuple[np.ndarray, np.ndarray]:
    """``patchify_video`` with a checkpoint's ``VisionPreproc`` values."""
    return patchify_video(
        frames,
        patch_size=pre.patch_size,
        merge_size=pre.merge_size,
        temporal_patch_size=pre.temporal_patch_size,
        image_mean=pre.image_mean,
        image_std=pre.image_std,
        rescale_factor=pre.rescale_factor,
    )


def n_video_tokens(video_grid_thw: np.ndarray, merge_size: int = 2) -> int:
    """Number of ``<|video_pad|>`` tokens for one video: ``t*h*w / merge_size**2``."""
    t, h, w = (int(v) for v in np.asarray(video_grid_thw).reshape(-1)[:3])
    return t * h * w // (merge_size * merge_size)


def sample_fps(frames: Frames) -> float:
    """The sampling rate of ``frames`` as qwen-vl-utils reports it (``nframes / clip duration``).

    qwen-vl-utils returns ``fps = nframes / total_frames * video_fps``; with frames spread from
    the first to the last source frame the clip lasts ``t[-1] - t[0] + 1/source_fps`` seconds.
    A single frame, or frames without a usable source fps, gives the processor default (2.0).
    A ``sample_fps`` attribute on ``frames`` (the sampler's own value), when set, wins.
    """
    explicit = getattr(frames, "sample_fps", None)
    if explicit is not None and explicit > 0:
        return float(explicit)
    ts = frames.timestamps_s
    n = len(ts)
    if n < 2 or not frames.source_fps or frames.source_fps <= 0:
        return DEFAULT_VIDEO_FPS
    duration = (ts[-1] - ts[0]) + 1.0 / frames.source_fps
    if duration <= 0:
        return DEFAULT_VIDEO_FPS
    return n / duration


def second_per_grid_t(frames: Frames, temporal_patch_size: int = 2) -> float:
    """Seconds covered by one temporal patch: ``temporal_patch_size / sample_fps``.

    Rounded to 1e-6 so float noise in timestamps cannot flip the integer truncation that
    transformers 4.5x applies to this value inside ``get_rope_index`` (5.x keeps the fraction).
    """
    return round(temporal_patch_size / sample_fps(frames), 6)


def truncated_rope_note(spg: float) -> str | None:
    """Why the installed transformers loses the video's time axis for ``spg`` seconds per temporal
    patch, or None. transformers 4.5x casts ``second_per_grid_t`` to an integer inside Qwen2.5-VL's
    ``get_rope_index`` (the reference and vLLM keep the fraction): below 1 s every video token gets
    temporal position 0. (Above 1 s a fraction is floored per patch instead of per position: positions
    differ by less than one patch step; not reported.)"""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5 or spg >= 1:
        return None
    return (f"{spg:g} s per temporal patch: transformers {transformers.__version__} truncates it to 0 in "
            "Qwen2.5-VL's get_rope_index, so every video token gets temporal position 0 (the model cannot tell "
            "early frames from late ones; the reference and vLLM keep the fraction): sample at most "
            "temporal_patch_size frames per second (e.g. fps <= 2) or use transformers 5")


def takes_mm_token_type_ids(model: Any) -> bool:
    """Whether ``model.forward`` takes ``mm_token_type_ids`` (transformers 5.x Qwen2.5-VL; 4.x does not).

    In 5.x the model builds the 3D (MRoPE) positions of vision tokens only when it gets
    ``mm_token_type_ids``; without them it silently gives every token plain 1D text positions.
    """
    import inspect

    return "mm_token_type_ids" in inspect.signature(model.forward).parameters


def mm_token_type_ids(input_ids: Any, video_token_id: int, image_token_id: int | None = None) -> Any:
    """Modality id per token, as transformers 5.x processors return it: 0 text, 1 image, 2 video.

    ``input_ids``: LongTensor [B, L] (padding counts as text) → LongTensor [B, L].
    """
    out = (input_ids == int(video_token_id)).long() * 2
    if image_token_id is not None:
        out = out + (input_ids == int(image_token_id)).long()
    return out


# -- prompt ------------------------------------------------------------------------------------
ChatRenderer = Callable[[list[dict[str, Any]]], str]


def to_hf_conversation(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """vpbench messages → the Qwen-style conversation ``apply_chat_template`` expects.

    Every message becomes ``{"role", "content": [{"type": "video"} | {"type": "text", ...}]}``
    keeping part order.
    """
    conv: list[dict[str, Any]] = []
    for m in messages:
        content: list[dict[str, Any]] = []
        for p in m.parts:
            if p.kind == "video":
                content.append({"type": "video"})
            elif p.kind == "text":
                content.append({"type": "text", "text": p.text})
            else:
                raise ValueError(f"unknown message part kind {p.kind!r}")
        conv.append({"role": m.role, "content": content})
    return conv


def count_video_parts(messages: Sequence[Message]) -> int:
    return sum(1 for m in messages for p in m.parts if p.kind == "video")


def build_prompt(
    messages: Sequence[Message], chat_template_renderer: ChatRenderer, n_video_tokens: int
) -> str:
    """Render ``messages`` with the checkpoint's chat template, then expand the video pad.

    ``chat_template_renderer`` maps a Qwen-style conversation to the prompt string (see
    ``chat_renderer``). With one video part the rendered text must hold exactly one
    ``<|video_pad|>``, which is replaced by ``n_video_tokens`` copies; with none,
    ``n_video_tokens`` must be 0. At most one video part is allowed (``Request`` contract).
    """
    n_videos = count_video_parts(messages)
    if n_videos > 1:
        raise ValueError(f"a request holds at most one video part, got {n_videos}")
    text = chat_template_renderer(to_hf_conversation(messages))
    found = text.count(VIDEO_PAD)
    if n_videos == 0:
        if n_video_tokens:
            raise ValueError(f"n_video_tokens={n_video_tokens} but the messages hold no video part")
        if found:
            raise ValueError(f"prompt text contains {VIDEO_PAD} but the messages hold no video part")
        return text
    if found != 1:
        raise ValueError(
            f"the chat template rendered {found} {VIDEO_PAD} tokens for one video part; "
            "the checkpoint's chat template must render a video part as "
            f"{VISION_START}{VIDEO_PAD}{VISION_END}"
        )
    if n_video_tokens <= 0:
        raise ValueError(f"n_video_tokens must be > 0 for a video part, got {n_video_tokens}")
    return text.replace(VIDEO_PAD, VIDEO_PAD * n_video_tokens)


def load_chat_template(model_dir: Path | str, tokenizer: Any = None) -> str:
    """The chat template of a local checkpoint.

    Order: the tokenizer's own template (tokenizer_config.json / chat_template.jinja), then the
    processor's ``chat_template.json`` (where released Qwen2.5-VL checkpoints keep it), then a
    bare ``chat_template.jinja``. None found raises ``ConfigError``.
    """
    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    if isinstance(template, str) and template:
        return template
    d = Path(model_dir)
    cj = d / "chat_template.json"
    if cj.is_file():
        try:
            value = json.loads(cj.read_text(encoding="utf-8")).get("chat_template")
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cj}: invalid JSON ({e})") from e
        if isinstance(value, str) and value:
            return value
    jinja = d / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    raise ConfigError(
        f"{d}: no chat template found (looked in tokenizer_config.json, chat_template.json, "
        "chat_template.jinja); copy the checkpoint's chat template into the dir"
    )


def chat_renderer(tokenizer: Any, template: str) -> ChatRenderer:
    """A renderer calling ``tokenizer.apply_chat_template(conv, tokenize=False, ...)``.

    A conversation ending with an assistant turn is a pre-filled answer (e.g. MVBench's
    "Best option:("): it is rendered open, for the model to continue
    (``continue_final_message=True``); otherwise a generation prompt is added."""

    def render(conversation: list[dict[str, Any]]) -> str:
        prefill = bool(conversation) and conversation[-1].get("role") == "assistant"
        out = tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=not prefill,
            continue_final_message=prefill, chat_template=template
        )
        if not isinstance(out, str):
            raise TypeError(f"apply_chat_template returned {type(out).__name__}, expected str")
        return out

    return render
