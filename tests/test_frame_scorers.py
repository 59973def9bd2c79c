"""Frame scorers: motion energy, random, and BLIP-2 / CLIP end to end on tiny random offline checkpoints."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vpbench.errors import ConfigError, DataError, MissingMedia
from vpbench.keyframes.degrade import key_absent
from vpbench.keyframes.scorers import FrameScorer, get_scorer, mean_direction, scorer_names

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(7, 24, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def blip2_dir(tmp_path_factory) -> str:
    from vpbench.keyframes.tiny_blip2 import build_tiny_blip2

    return str(build_tiny_blip2(tmp_path_factory.mktemp("blip2"), seed=0))


# --------------------------------------------------------------------------------------- cheap scorers
def test_motion_energy_is_mean_abs_difference():
    v = np.zeros((3, 2, 2, 3), np.uint8)
    v[1, 0, 0, 0] = 255  # one channel of one pixel: 255 / 12
    v[2] = 10  # |10 - 0| everywhere except that pixel: (11 * 10 + 245) / 12
    s = get_scorer("motion_energy").score(v, [])
    assert s.tolist() == pytest.approx([0.0, 255 / 12, (11 * 10 + 245) / 12])
    assert s.dtype == np.float64


def test_random_scorer_is_seeded_and_input_dependent(frames):
    a = get_scorer("random", seed=1)
    assert np.array_equal(a.score(frames, ["x"]), a.score(frames, ["x"]))
    assert not np.array_equal(a.score(frames, ["x"]), get_scorer("random", seed=2).score(frames, ["x"]))
    assert not np.array_equal(a.score(frames, ["x"]), a.score(frames[::-1].copy(), ["x"]))
    s = a.score(frames, ["x"])
    assert s.shape == (7,) and np.all((s >= 0) & (s < 1))


def test_registry_and_validation(frames):
    assert scorer_names() == ["blip2", "clip", "motion_energy", "random"]
    with pytest.raises(ConfigError, match="did you mean 'blip2'"):
        get_scorer("blip")
    with pytest.raises(ConfigError, match="unknown key 'sed'"):
        get_scorer("random", sed=3)
    with pytest.raises(ConfigError, match="model_dir"):
        get_scorer("blip2")
    with pytest.raises(ConfigError, match="query_reduce"):
        get_scorer("blip2", model_dir="x", query_reduce="min")
    with pytest.raises(DataError, match="uint8"):
        get_scorer("motion_energy").score(frames.astype(np.float32), [])
    with pytest.raises(DataError, match=r"\[T>=1, H, W, 3\]"):
        get_scorer("motion_energy").score(frames[..., :1], [])
    assert isinstance(get_scorer("random"), FrameScorer)


def test_mean_direction():
    got = mean_direction(np.array([[2.0, 0.0], [0.0, 5.0]]))
    assert got.tolist() == pytest.approx([2**-0.5, 2**-0.5])


# ------------------------------------------------------------------------------------------------- blip2
def test_blip2_scores_equal_manual_max_over_queries(blip2_dir, frames):
    scorer = get_scorer("blip2", model_dir=blip2_dir, batch_size=3)  # 7 frames → batches of 3, 3, 1
    kws = ["raise hand", "blink", "snap fingers"]
    s = scorer.score(frames, kws)
    assert s.shape == (7,) and s.dtype == np.float64
    assert np.array_equal(s, get_scorer("blip2", model_dir=blip2_dir).score(frames, kws))  # deterministic

    img = scorer.embed_frames(frames)  # [T, Q, D]
    assert img.shape == (7, 4, 16)
    assert np.linalg.norm(img, axis=-1) == pytest.approx(np.ones((7, 4)), abs=1e-5)
    cls = []
    for k in kws:  # one keyword at a time: [CLS] embedding, then mean of unit vectors, re-normalised
        cls.append(scorer.embed_keywords([k]))
    kbar = np.mean(cls, axis=0)
    kbar /= np.linalg.norm(kbar)
    manual = np.einsum("tqd,d->tq", img, kbar)
    assert s == pytest.approx(manual.max(axis=1), abs=1e-6)
    assert not np.allclose(manual.max(axis=1), manual.mean(axis=1))  # the reduction matters on this model
    mean_scorer = get_scorer("blip2", model_dir=blip2_dir, query_reduce="mean")
    assert mean_scorer.score(frames, kws) == pytest.approx(manual.mean(axis=1), abs=1e-6)


def test_blip2_single_keyword_equals_retrieval_logits(blip2_dir, frames):
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, Blip2ForImageTextRetrieval

    model = Blip2ForImageTextRetrieval.from_pretrained(blip2_dir).eval()
    tok = AutoTokenizer.from_pretrained(blip2_dir)
    proc = AutoImageProcessor.from_pretrained(blip2_dir, use_fast=False)
    enc = tok(["wave"], return_tensors="pt")
    pix = proc(images=list(frames), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = model(pixel_values=pix, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    use_image_text_matching_head=False).logits_per_image[:, 0]
    got = get_scorer("blip2", model_dir=blip2_dir).score(frames, ["wave"])
    assert got == pytest.approx(ref.numpy().astype(np.float64), abs=1e-5)


def test_blip2_key_absent_keeps_shape(blip2_dir, frames):
    res = key_absent(frames, ["jump"], get_scorer("blip2", model_dir=blip2_dir))
    assert res.degraded.shape == frames.shape and res.degraded.dtype == np.uint8
    assert len(res.key_idx) >= 1
    for t in range(len(frames)):
        want = frames[t - 1] if (t in res.key_idx and t > 0) else frames[t]
        assert np.array_equal(res.degraded[t], want)


def test_blip2_errors(blip2_dir, frames, tmp_path):
    with pytest.raises(DataError, match="keyword"):
        get_scorer("blip2", model_dir=blip2_dir).score(frames, [])
    with pytest.raises(MissingMedia, match="not a directory"):
        get_scorer("blip2", model_dir=str(tmp_path / "nope")).score(frames, ["x"])


# -------------------------------------------------------------------------------------------------- clip
def test_clip_scores_are_cosines_to_mean_keyword(tmp_path, frames):
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    from vpbench.keyframes.tiny_blip2 import build_tiny_clip

    d = str(build_tiny_clip(tmp_path / "clip", seed=0))
    scorer = get_scorer("clip", model_dir=d, batch_size=4)
    kws = ["wave", "kick ball"]
    s = scorer.score(frames, kws)
    assert s.shape == (7,) and np.all(np.abs(s) <= 1 + 1e-9)

    # reference: CLIPModel's own forward, whose text_embeds / image_embeds are the L2-normalised projections
    # (the same on transformers 4.x and 5.x, unlike the return type of get_*_features)
    model = CLIPModel.from_pretrained(d).eval()
    tok = AutoTokenizer.from_pretrained(d)
    with torch.no_grad():
        enc = tok(kws, padding=True, return_tensors="pt")
        pix = AutoImageProcessor.from_pretrained(d)(images=list(frames), return_tensors="pt")["pixel_values"]
        ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pix)
    t = ref.text_embeds.numpy().astype(np.float64)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    kbar = t.mean(0) / np.linalg.norm(t.mean(0))
    img = scorer.embed_frames(frames)
    np.testing.assert_allclose(img, ref.image_embeds.numpy().astype(np.float64), rtol=0, atol=1e-6)
    assert s == pytest.approx(img @ kbar, abs=1e-6)
