"""The tiny random Qwen2.5-VL checkpoint: layout, determinism, loadability, speed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vpbench.errors import ConfigError
from vpbench.models.qwen_inputs import mm_token_type_ids, patchify_video, takes_mm_token_type_ids
from vpbench.models.tiny_qwen import SPECIAL_TOKENS, build_tiny_qwen


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="module")
def ckpt(root: Path) -> Path:
    return build_tiny_qwen(root / "seed0", seed=0)


def test_layout(ckpt: Path):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.json", "preprocessor_config.json", "generation_config.json"):
        assert (ckpt / name).is_file(), name
    pre = json.loads((ckpt / "preprocessor_config.json").read_text())
    assert (pre["patch_size"], pre["merge_size"], pre["temporal_patch_size"]) == (14, 2, 2)
    assert pre["image_mean"] == [0.48145466, 0.4578275, 0.40821073]
    assert pre["image_std"] == [0.26862954, 0.26130258, 0.27577711]
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl" and cfg["text_config"]["hidden_size"] == 64
    gen = json.loads((ckpt / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [cfg["eos_token_id"], cfg["pad_token_id"]]


def test_same_seed_same_bytes_other_seed_differs(ckpt: Path, root: Path):
    again = build_tiny_qwen(root / "seed0b", seed=0)
    other = build_tiny_qwen(root / "seed1", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (ckpt / name).read_bytes() == (again / name).read_bytes(), name
    assert (ckpt / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    assert (ckpt / "tokenizer.json").read_bytes() == (other / "tokenizer.json").read_bytes()


def test_refuses_non_empty_dir(ckpt: Path):
    with pytest.raises(ConfigError, match="not empty"):
        build_tiny_qwen(ckpt, seed=0)


def test_tokenizer(ckpt: Path):
    from transformers import AutoTokenizer, Qwen2TokenizerFast

    tok = AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    assert isinstance(tok, Qwen2TokenizerFast)
    cfg = json.loads((ckpt / "config.json").read_text())
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    assert ids["<|video_pad|>"] == cfg["video_token_id"]
    assert ids["<|image_pad|>"] == cfg["image_token_id"]
    assert ids["<|vision_start|>"] == cfg["vision_start_token_id"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    enc = tok("The answer is B.")
    assert set(enc.keys()) == {"input_ids", "attention_mask"}  # no token_type_ids
    assert tok.decode(enc["input_ids"]) == "The answer is B."
    # special tokens stay single tokens, option letters are single tokens
    assert tok("<|vision_start|><|video_pad|><|video_pad|><|vision_end|>")["input_ids"] == [
        ids["<|vision_start|>"], ids["<|video_pad|>"], ids["<|video_pad|>"], ids["<|vision_end|>"]]
    for letter in "ABCD":
        assert len(tok(letter)["input_ids"]) == 1
    text = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q"}]}],
        tokenize=False, add_generation_prompt=True,
    )
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|video_pad|><|vision_end|>Q<|im_end|>\n<|im_start|>assistant\n")


def test_loads_and_runs_fast(ckpt: Path):
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(ckpt), local_files_only=True).eval()
    auto = AutoModelForImageTextToText.from_pretrained(str(ckpt), local_files_only=True).eval()
    assert type(auto) is Qwen2_5_VLForConditionalGeneration
    n_params = sum(p.numel() for p in model.parameters())
    assert 150_000 <= n_params <= 300_000
    tok = AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    frames = np.random.default_rng(0).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    pv, thw = patchify_video(frames)
    prompt = "<|im_start|>user\n<|vision_start|>" + "<|video_pad|>" * 8 + "<|vision_end|>Q<|im_end|>\n"
    enc = tok(prompt, return_tensors="pt")
    kw = dict(pixel_values_videos=torch.from_numpy(pv), video_grid_thw=torch.from_numpy(thw),
              second_per_grid_ts=torch.tensor([1.0]))
    if takes_mm_token_type_ids(model):  # transformers 5.x: needed for the video tokens' 3D positions
        kw["mm_token_type_ids"] = mm_token_type_ids(enc["input_ids"], model.config.video_token_id)
    with torch.inference_mode():
        logits = model(**enc, **kw).logits
        logits_auto = auto(**enc, **kw).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], len(tok))
    assert torch.equal(logits, logits_auto)


def test_small_preset_rope_resolves_left_right_on_a_2x2_grid(tmp_path: Path):
    """The built model's M-RoPE: every section (t, h, w) of the `small` preset turns >= 0.5 rad per grid
    step, so the two columns of a tiny clip's 2x2 token grid differ (at theta 1e4 the width section turned
    <= 0.003 rad, what kept corner questions at chance; tiny_qwen.PRESETS)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    path = build_tiny_qwen(tmp_path / "small", seed=0, preset="small")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), dtype=torch.float32)
    text = model.config.get_text_config()
    inv = model.model.language_model.rotary_emb.inv_freq  # [head_dim / 2], highest frequency first
    t, h, w = text.rope_scaling["mrope_section"]
    assert text.rope_theta == 2.0 and inv.numel() == t + h + w
    assert float(inv[t + h:].max()) == pytest.approx(2.0 ** (-2 * (t + h) / (2 * inv.numel())))
    assert float(inv.min()) >= 0.5


def test_small_preset_answers_an_option_then_its_letter_in_two_tokens(tmp_path: Path):
    """`small` keeps " (B)" as one token: a text_letter answer is the option token, then the letter token
    (with " (", "B", ")" the tiny model did not learn to bind the letter; synth_phrases). Both MotionBench
    parsers read the letter from the decoded answer."""
    from transformers import AutoTokenizer

    from tasks.motionbench.parse import lmms_eval_choice, polish_answer

    path = build_tiny_qwen(tmp_path / "small", seed=0, preset="small")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    for letter in "ABCDEF":
        answer = f"It grows ({letter})"
        ids = tok(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        assert [tok.decode([i]) for i in ids] == ["It grows", f" ({letter})", "<|im_end|>"]
        assert tok.decode(ids, skip_special_tokens=True) == answer
        assert polish_answer(answer) == lmms_eval_choice(answer) == letter
    option_line = tok("\nB. It grows", add_special_tokens=False)["input_ids"]
    assert [tok.decode([i]) for i in option_line] == ["\nB. ", "It grows"]
