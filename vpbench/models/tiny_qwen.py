"""A tiny random Qwen2.5-VL checkpoint, built offline, for tests and smoke runs.

``build_tiny_qwen(out_dir, seed, preset=...)`` writes a standard transformers checkpoint dir
(config.json, model.safetensors, tokenizer files with the Qwen special tokens and chat template,
chat_template.json, preprocessor_config.json, generation_config.json) that loads with
``Qwen2_5_VLForConditionalGeneration.from_pretrained`` / ``AutoModelForImageTextToText``. Same seed
→ identical weight bytes; the byte-level BPE tokenizer is trained on a fixed corpus and is
seed-independent. Presets (``PRESETS``):

- ``micro`` (default): ~200k parameters, text hidden 64, 2 layers, 512-token vocabulary; a forward
  takes milliseconds on CPU (unit tests, golden curves).
- ``small``: the model the tiny stage-1 config trains (recipes/configs/sft_contrastive/tiny_learn.yaml):
  text hidden 128, 4 layers, vision hidden 64, init std 0.08, M-RoPE theta 2 (``PRESETS`` says why:
  at theta 1e4 the 2x2 grid of a tiny clip has no usable left/right position); its tokenizer adds
  the generated benchmarks' phrases (``synth_phrases``: option prefixes, option texts, question
  stems, prompts) as single tokens, so every option is one letter token plus one text token and
  every answer letter is one token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpbench.errors import ConfigError
from vpbench.models.qwen_inputs import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

# Special tokens in the order of the released Qwen2/Qwen2.5-VL vocabulary (ids 151643.. there,
# 0.. here).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The chat template of the released Qwen2.5-VL-*-Instruct checkpoints (chat_template.json).
QWEN25_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The Qwen2 pre-tokenizer split (digits one by one, words with an optional leading space).
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_CORPUS: tuple[str, ...] = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Question<|im_end|>\n<|im_start|>assistant\n",
    "A. B. C. D. E. F. (A) (B) (C) (D) (E) (F) A B C D E F a b c d e f",
    "The answer is A. The answer is B. The answer is C. The answer is D. Answer: A Answer: B",
    "Answer with the option's letter from the given choices directly.",
    "Select the best answer to the following multiple-choice question based on the video.",
    "Respond with only the letter (A, B, C, or D) of the correct option.",
    "Yes No yes no True False true false 0 1 2 3 4 5 6 7 8 9 10 100",
    "What is the camera motion? pan left, pan right, tilt up, tilt down, zoom in, zoom out, static",
    "How many times does the person jump? Which direction does the car move? left right up down",
    "What happens before the collision? after the accident, the vehicle stops; a pedestrian crosses",
    "Describe the motion of the object in the video in detail. The man walks to the door quickly.",
    "fine-grained motion, transient event, action, speed, rotation, clockwise, counterclockwise",
    "<think> reasoning </think> <answer> B </answer> Option, Options, Question, Video, Frame, frames",
    "Please think step by step. First, second, third. Therefore the correct option is C.",
)


def synth_phrases() -> tuple[str, ...]:
    """Whole phrases of the generated benchmarks that the ``small`` preset's tokenizer keeps as ONE token
    each (added tokens): option prefixes ("\\nA. "), option texts (camera and motion phrases, corners,
    objects), question stems, the system prompt and MotionBench's post-prompt, and an answer's letter in
    parentheses (" (B)"). A question then reads as stem, then per option a letter token followed by one
    option token, so telling the options apart is a lookup and the model's work is in the pixels; an answer
    "It grows (B)" (``vpbench synth --mc-answer text_letter``) is the option token, then its letter token.
    With " (", "B", ")" instead the tiny model never learned to put the named option's letter after it
    (27% = chance on 150 binding questions after 400 steps of batch 32 on them alone; 68% with " (B)";
    recipes/configs/sft_contrastive/tiny_learn.yaml)."""
    from vpbench.synth.motionbench import _CAMERA_TEXT, _MOTION_TEXT, LETTERS
    from vpbench.synth.scenes import COLORS, CORNERS, SHAPES

    objects = [f"{c} {s}" for c in COLORS for s in SHAPES]
    stems = ("What motion does the ", " perform?", "In which direction does the ", " rotate?", " slide?",
             "Where does the ", " end up at the end of the video?", "Toward which corner does the ",
             " move first?", "How does the camera move in this video?", "Which object is the first to move?",
             "Which object is the last to move?", "Which object moves upward?", "In what order do the shapes move?",
             "Which shape moves second?", "How many times does the lamp flash in the video?",
             "How many times does the left lamp flash?", "How many times does the right lamp flash?",
             "How many flashes are there in total, counting both lamps?", ", then ")
    options = (*_CAMERA_TEXT.values(), *_MOTION_TEXT.values(), *(f"The {c} corner" for c in CORNERS), *objects,
               "From left to right", "From right to left", "From top to bottom", "counterclockwise", "clockwise",
               "It does not rotate")
    prompts = ("Answer with only the option letter (A, B, C, D, E, or F).", "You are a helpful assistant.",
               "Describe the motion and events in the video in temporal order.")
    return (*(f"\n{x}. " for x in LETTERS), *(f" ({x})" for x in LETTERS), *stems, *options, *prompts)


def _build_tokenizer(out_dir: Path, phrases: tuple[str, ...] = ()) -> dict[str, int]:
    """Train the byte-level BPE, save it as a ``Qwen2TokenizerFast``; return special token ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    if phrases:  # longest first: a phrase never loses to one of its own parts
        tok.add_tokens([AddedToken(x, normalized=False) for x in sorted(phrases, key=lambda x: (-len(x), x))])
    hf = Qwen2TokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
        errors="replace",
        split_special_tokens=False,
    )
    hf.chat_template = QWEN25_VL_CHAT_TEMPLATE
    hf.model_max_length = 32768
    hf.save_pretrained(str(out_dir))
    return {t: int(hf.convert_tokens_to_ids(t)) for t in SPECIAL_TOKENS} | {"__len__": len(hf)}


# Sizes per preset: text (hidden, intermediate, layers, heads, kv heads, mrope_section with
# sum == head_dim/2), vision (depth, hidden, intermediate, heads), whether the tokenizer keeps the
# generated benchmarks' phrases as single tokens (``synth_phrases``), the weight init std
# (``initializer_range``; transformers' default 0.02 is sized for hidden ~1000s: at hidden 128 it
# leaves the video's contribution to the answer position so small that training on generated
# MotionBench never moves past the answer prior) and the text ``rope_theta``.
# Why ``small`` has rope_theta 2: M-RoPE gives the temporal section the highest rotary frequencies,
# height the middle ones and width the lowest (inv_freq_i = theta^(-2i/head_dim)). With head_dim 32
# and theta 1e4 (the released 10k/1M) the height section turns at most 0.1 rad and the width section
# at most 0.003 rad per grid step, and a tiny clip's grid is 2x2 merged tokens: left and right were
# the same position to the language model, so "which corner" could not be learned (measured: held-out
# corner questions stay at chance after 800 steps at theta 1e4 or 10, 100% by step 700 at theta 2).
# At theta 2 every section turns 0.52..1 rad per step; the short tiny prompts do not need long range.
PRESETS: dict[str, dict[str, Any]] = {
    "micro": {"text": (64, 128, 2, 4, 2, [2, 3, 3]), "vision": (2, 32, 64, 2), "phrases": False, "init_std": 0.02,
              "rope_theta": 1e4},
    "small": {"text": (128, 256, 4, 4, 2, [4, 6, 6]), "vision": (2, 64, 128, 2), "phrases": True, "init_std": 0.08,
              "rope_theta": 2.0},
}


def _preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"tiny model preset {name!r} is not one of {sorted(PRESETS)}")
    return PRESETS[name]


def tiny_config_dict(ids: dict[str, int], vocab_size: int, preset: str = "micro") -> dict[str, Any]:
    """Text/vision sizes of the tiny model (see research deps.md §3.1 for the constraints)."""
    p = _preset(preset)
    hidden, inter, layers, heads, kv, mrope = p["text"]
    v_depth, v_hidden, v_inter, v_heads = p["vision"]
    text = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=4096,
        rope_theta=p["rope_theta"],
        rope_scaling={"type": "mrope", "mrope_section": list(mrope)},
        initializer_range=p["init_std"],
        tie_word_embeddings=False,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision = dict(
        depth=v_depth,
        hidden_size=v_hidden,
        intermediate_size=v_inter,
        num_heads=v_heads,
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        out_hidden_size=hidden,  # == text hidden size
        fullatt_block_indexes=[1],
        initializer_range=p["init_std"],
        tokens_per_second=2,  # as in the released 7B config
    )
    return dict(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        vision_token_id=ids["<|vision_pad|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        initializer_range=p["init_std"],
        tie_word_embeddings=False,
    )


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_tiny_qwen(out_dir: Path, seed: int = 0, *, overwrite: bool = False, preset: str = "micro") -> Path:
    """Write a tiny random Qwen2.5-VL checkpoint to ``out_dir`` and return it.

    A non-empty ``out_dir`` raises ``ConfigError`` unless ``overwrite``. Weights are drawn under
    ``torch.manual_seed(seed)`` inside a forked RNG (the caller's RNG state is untouched).
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} exists and is not a directory; pass a directory to --output")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir} is not empty; choose a new --output dir (or overwrite=True)")
    p = _preset(preset)
    out_dir.mkdir(parents=True, exist_ok=True)

    ids = _build_tokenizer(out_dir, synth_phrases() if p["phrases"] else ())
    vocab_size = ids.pop("__len__")
    cfg = Qwen2_5_VLConfig(**tiny_config_dict(ids, vocab_size, preset))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        do_sample=False,
    )
    model.save_pretrained(str(out_dir), safe_serialization=True)

    _write_json(out_dir / "chat_template.json", {"chat_template": QWEN25_VL_CHAT_TEMPLATE})
    _write_json(
        out_dir / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": list(OPENAI_CLIP_MEAN),
            "image_processor_type": "Qwen2VLImageProcessor",
            "image_std": list(OPENAI_CLIP_STD),
            "max_pixels": 12845056,
            "merge_size": 2,
            "min_pixels": 3136,
            "patch_size": 14,
            "processor_class": "Qwen2_5_VLProcessor",
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
            "temporal_patch_size": 2,
        },
    )
    _write_json(
        out_dir / "vpbench_tiny.json",
        {"builder": "vpbench.models.tiny_qwen.build_tiny_qwen", "seed": seed, "preset": preset,
         "n_params": sum(p.numel() for p in model.parameters())},
    )
    return out_dir

