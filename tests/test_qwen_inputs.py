"""Qwen2.5-VL input preparation against transformers' own (slow/PIL, torchvision-free) image processor."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from vpbench.errors import ConfigError
from vpbench.models.qwen_inputs import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    VisionPreproc,
    build_prompt,
    chat_renderer,
    load_chat_template,
    n_video_tokens,
    patchify_video,
    patchify_with,
    sample_fps,
    second_per_grid_t,
)
from vpbench.types import Frames, Message, Part


def _hf_video(frames: np.ndarray, **kw) -> tuple[np.ndarray, np.ndarray]:
    """transformers' own ``Qwen2VLImageProcessor`` patchify of a video → (pixel_values_videos, video_grid_thw).

    transformers 5.x dropped the image processor's ``videos=`` path (the video processor needs torchvision),
    so there the frames go through it as *images*: HF rescales, normalises and patchifies each frame (with the
    frame repeated over the temporal axis); the test only regroups consecutive frames into temporal patches.
    On 4.x, where ``videos=`` still exists, both routes run and must agree exactly, which checks the regrouping.
    """
    import transformers
    from transformers import Qwen2VLImageProcessor

    proc = Qwen2VLImageProcessor(**kw)
    tps, p, video = proc.temporal_patch_size, proc.patch_size, frames
    if len(frames) % tps:  # HF pads a video by repeating its last frame (4.x checks this below)
        frames = np.concatenate([frames] + [frames[-1:]] * (tps - len(frames) % tps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = proc(images=list(frames), do_resize=False, return_tensors="np")
    (_, gh, gw), t = img["image_grid_thw"][0], len(frames)
    per = img["pixel_values"].reshape(t, gh * gw, 3, tps, p, p)
    assert all(np.array_equal(per[:, :, :, 0], per[:, :, :, k]) for k in range(tps))  # a still = repeated frame
    pv = (per[:, :, :, 0].reshape(t // tps, tps, gh * gw, 3, p, p).transpose(0, 2, 3, 1, 4, 5)
          .reshape(t // tps * gh * gw, 3 * tps * p * p))
    thw = np.array([[t // tps, gh, gw]], dtype=np.int64)
    if int(transformers.__version__.split(".")[0]) < 5:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = proc(images=None, videos=[list(video)], do_resize=False, return_tensors="np")
        np.testing.assert_array_equal(out["video_grid_thw"], thw)
        np.testing.assert_array_equal(out["pixel_values_videos"], pv)
    return pv, thw


@pytest.mark.parametrize(
    "shape", [(4, 56, 56), (6, 56, 84), (4, 112, 56), (5, 56, 56), (1, 28, 28), (8, 84, 112)]
)
def test_patchify_matches_hf_processor(shape):
    t, h, w = shape
    frames = np.random.default_rng(sum(shape)).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    ref_pv, ref_thw = _hf_video(frames)
    pv, thw = patchify_video(frames)
    assert pv.dtype == np.float32 and thw.dtype == np.int64
    assert pv.shape == ref_pv.shape == (thw.prod(), 3 * 2 * 14 * 14)
    np.testing.assert_array_equal(thw, ref_thw)
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:  # the videos= path itself: bit-identical
        assert pv.tobytes() == ref_pv.tobytes()
    else:  # 5.x: frames go through HF as images (see _hf_video)
        assert np.abs(pv - ref_pv).max() <= 1e-6
    # grid in patch units; an odd T is padded to the next multiple of 2
    assert thw.tolist() == [[(t + 1) // 2, h // 14, w // 14]]
    assert n_video_tokens(thw) == ((t + 1) // 2) * (h // 14) * (w // 14) // 4


def test_odd_frame_count_repeats_last_frame():
    frames = np.random.default_rng(1).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    padded = np.concatenate([frames, frames[-1:]])
    np.testing.assert_array_equal(patchify_video(frames)[0], patchify_video(padded)[0])
    # ...and not the first frame
    other = np.concatenate([frames, frames[:1]])
    assert not np.array_equal(patchify_video(frames)[0], patchify_video(other)[0])


def test_patch_values_by_hand():
    # a flat frame: every value of channel c is (v/255 - mean_c)/std_c, in channel-major order
    frames = np.full((2, 28, 28, 3), (0, 128, 255), dtype=np.uint8)
    pv, thw = patchify_video(frames)
    assert thw.tolist() == [[1, 2, 2]] and pv.shape == (4, 1176)
    want = [(v / 255 - m) / s for v, m, s in zip((0, 128, 255), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)]
    row = pv[0].reshape(3, 2, 14, 14)
    for c in range(3):
        np.testing.assert_allclose(row[c], want[c], rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 56, 50), (2, 30, 56), (2, 42, 56)])
def test_patchify_rejects_unresized_frames(shape):
    with pytest.raises(ValueError, match="multiple of 28"):
        patchify_video(np.zeros(shape + (3,), dtype=np.uint8))


def test_patchify_rejects_bad_dtype_and_rank():
    with pytest.raises(ValueError, match="uint8"):
        patchify_video(np.zeros((2, 28, 28, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[T,H,W,3\]"):
        patchify_video(np.zeros((28, 28, 3), dtype=np.uint8))


def test_preproc_from_pretrained_reads_checkpoint_values(tmp_path: Path):
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": mean, "image_std": std, "patch_size": 14, "merge_size": 2,
                    "temporal_patch_size": 2, "rescale_factor": 0.00392156862745098})
    )
    pre = VisionPreproc.from_pretrained(tmp_path)
    assert pre.image_mean == tuple(mean) and pre.image_std == tuple(std) and pre.factor == 28
    frames = np.random.default_rng(2).integers(0, 256, (4, 56, 28, 3), dtype=np.uint8)
    ref_pv, _ = _hf_video(frames, image_mean=mean, image_std=std)
    assert np.abs(patchify_with(frames, pre)[0] - ref_pv).max() <= 1e-6


def test_preproc_missing_or_unsupported(tmp_path: Path):
    with pytest.raises(ConfigError, match="preprocessor_config.json"):
        VisionPreproc.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False}))
    with pytest.raises(ConfigError, match="do_normalize"):
        VisionPreproc.from_pretrained(tmp_path)


def _frames(ts, fps=30.0):
    arr = np.zeros((len(ts), 28, 28, 3), dtype=np.uint8)
    return Frames(arr, tuple(ts), fps, "x")


def test_second_per_grid_follows_qwen_vl_utils_fps():
    # qwen-vl-utils on a 4 s, 30 fps clip (120 frames) at fps=2: 8 frames from linspace(0, 119, 8)
    idx = np.linspace(0, 119, 8).round().astype(int)
    fr = _frames([i / 30 for i in idx])
    assert sample_fps(fr) == pytest.approx(8 / 120 * 30, abs=1e-12)
    assert second_per_grid_t(fr) == 1.0
    # 10 frames over 150 source frames at 30 fps -> 2 fps again; 4 frames of a 30-frame clip -> 4 fps
    fr = _frames([i / 30 for i in np.linspace(0, 29, 4).round().astype(int)])
    assert second_per_grid_t(fr) == 0.5
    assert sample_fps(_frames([0.0])) == 2.0  # single frame: processor default


def test_build_prompt_expands_video_pad_in_part_order(tiny_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    render = chat_renderer(tok, load_chat_template(tiny_tokenizer_dir, tok))
    msgs = (Message("user", (Part("text", "Q: which?"), Part("video"), Part("text", " Answer."))),)
    got = build_prompt(msgs, render, 3)
    assert got == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "Q: which?<|vision_start|>" + "<|video_pad|>" * 3 + "<|vision_end|> Answer.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    sys_msgs = (Message("system", (Part("text", "Be brief."),)), Message("user", (Part("text", "Hi"),)))
    assert build_prompt(sys_msgs, render, 0) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    with pytest.raises(ValueError, match="no video part"):
        build_prompt(sys_msgs, render, 4)
    with pytest.raises(ValueError, match="n_video_tokens must be > 0"):
        build_prompt(msgs, render, 0)
    two = (Message("user", (Part("video"), Part("video"))),)
    with pytest.raises(ValueError, match="at most one video"):
        build_prompt(two, render, 4)
    # a template that ignores video parts is caught, not silently answered from text
    with pytest.raises(ValueError, match="rendered 0"):
        build_prompt(msgs, lambda conv: "no video here", 3)


def test_chat_template_sources(tiny_tokenizer_dir: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    template = (tiny_tokenizer_dir / "chat_template.jinja").read_text()
    # 1) processor-side chat_template.json only (tokenizer without a template)
    d1 = tmp_path / "proc_only"
    shutil.copytree(tiny_tokenizer_dir, d1)
    (d1 / "chat_template.jinja").unlink()
    tok1 = AutoTokenizer.from_pretrained(str(d1))
    assert not tok1.chat_template
    assert load_chat_template(d1, tok1) == template
    # 2) template inside tokenizer_config.json only
    d2 = tmp_path / "tok_only"
    shutil.copytree(d1, d2)
    (d2 / "chat_template.json").unlink()
    cfg = json.loads((d2 / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    (d2 / "tokenizer_config.json").write_text(json.dumps(cfg))
    tok2 = AutoTokenizer.from_pretrained(str(d2))
    assert load_chat_template(d2, tok2) == template
    # 3) none at all
    (d1 / "chat_template.json").unlink()
    with pytest.raises(ConfigError, match="no chat template"):
        load_chat_template(d1, AutoTokenizer.from_pretrained(str(d1)))


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from vpbench.models.tiny_qwen import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("tinyq") / "ckpt", seed=0)


def test_assistant_prefill_is_continued_not_closed(tmp_path):
    """MVBench pre-fills the answer with 'Best option:(': the prompt must end inside that turn."""
    from transformers import AutoTokenizer

    from vpbench.models.qwen_inputs import build_prompt, chat_renderer, load_chat_template
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.types import Message, Part

    d = build_tiny_qwen(tmp_path / "tiny")
    tok = AutoTokenizer.from_pretrained(d)
    render = chat_renderer(tok, load_chat_template(d, tok))
    msgs = (Message("user", (Part("video"), Part("text", "Q?"))), Message("assistant", (Part("text", "Best option:("),)))
    text = build_prompt(msgs, render, 4)
    assert text.endswith("<|im_start|>assistant\nBest option:(")
    plain = build_prompt(msgs[:1], render, 4)
    assert plain.endswith("<|im_start|>assistant\n")


def test_mm_token_type_ids_marks_modalities():
    import torch

    from vpbench.models.qwen_inputs import mm_token_type_ids

    ids = torch.tensor([[0, 0, 7, 13, 13, 8, 5], [7, 12, 12, 8, 13, 5, 6]])
    assert mm_token_type_ids(ids, 13, 12).tolist() == [[0, 0, 0, 2, 2, 0, 0], [0, 1, 1, 0, 2, 0, 0]]
    assert mm_token_type_ids(ids, 13).tolist() == [[0, 0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 2, 0, 0]]
    assert mm_token_type_ids(ids, 13).dtype == torch.long


def _patchify_float64_reference(frames: np.ndarray, mean, std, rescale: float) -> np.ndarray:
    """The HF slow processor's arithmetic written out (float64 rescale, float32 normalise, then the
    patch order): the implementation ``patchify_video`` had before its lookup table."""
    x = (frames.astype(np.float64) * rescale).astype(np.float32)
    x = ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).transpose(0, 3, 1, 2)
    if len(x) % 2:
        x = np.concatenate([x, x[-1:]])
    t, _, h, w = x.shape
    x = x.reshape(t // 2, 2, 3, h // 28, 2, 14, w // 28, 2, 14).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(-1, 3 * 2 * 14 * 14))


@pytest.mark.parametrize("mean,std,rescale", [
    (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, 1 / 255),
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1 / 255),
    ((0.1, 0.2, 0.3), (0.9, 0.7, 0.31), 0.0039),
])
def test_patchify_lookup_table_is_bit_identical_to_float64_path(mean, std, rescale):
    # every uint8 level in every channel (256 x 3 values laid out over a 3-frame odd clip) plus noise
    levels = np.broadcast_to(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), (16, 16, 3))
    frames = np.random.default_rng(7).integers(0, 256, (3, 56, 84, 3), dtype=np.uint8)
    frames[0, :16, :16] = levels
    frames[1, 20:36, 30:46] = levels[::-1]
    pv, _ = patchify_video(frames, image_mean=mean, image_std=std, rescale_factor=rescale)
    ref = _patchify_float64_reference(frames, mean, std, rescale)
    assert pv.dtype == ref.dtype == np.float32 and pv.shape == ref.shape
    assert pv.tobytes() == ref.tobytes()


def test_patchify_makes_no_float64_copy_of_the_frames():
    import tracemalloc

    frames = np.random.default_rng(3).integers(0, 256, (8, 112, 140, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        pv, _ = patchify_video(frames)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # output float32 (4 bytes/value) + a uint8 reordering (1) + a per-channel gather temporary
    # (4/3); the float64 path peaked above 16 bytes/value
    assert pv.nbytes == 4 * frames.size
    assert peak < 7 * frames.size
