"""Exactness of the stage-1 step's speed-ups (vpbench/train/model.py, contrastive.py).

* V' features: the vision tower runs only on the temporal patches of V' whose pixels differ from
  V's, spliced into V's features (the tower works per temporal patch);
* block max(l) of the contrastive passes runs on the eos rows only (``layer_rows``);
* the SimCSE view pass is skipped when no dropout is in play (it equals segment 0);
* each is compared with the reference path it replaces, values and gradients.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.manifest import synth_sft_manifest

    base = tmp_path_factory.mktemp("speed")
    return {"model": build_tiny_qwen(base / "model", seed=0),
            "manifest": synth_sft_manifest(base / "data", n_clips=4, seed=0)}


def _batch(env: dict, n: int = 4, side: str = "right"):
    from transformers import AutoTokenizer, Qwen2_5_VLConfig

    from vpbench.train.collate import collate_sft
    from vpbench.train.config import load_config
    from vpbench.train.contrastive import SpecialIds
    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest

    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "recipes/configs/sft_contrastive/tiny.yaml",
                      {"model.path": str(env["model"]), "data.manifest": str(env["manifest"]),
                       "data.padding_side": side})
    tok = AutoTokenizer.from_pretrained(env["model"])
    ds = SFTDataset(read_manifest(env["manifest"]), cfg.data, env["model"], tok)
    ids = SpecialIds.from_model(Qwen2_5_VLConfig.from_pretrained(env["model"]), tok)
    exs = [ds[i] for i in range(n)]
    return collate_sft(exs, ids, side), ids, exs


def _wrapped(env: dict, ids, n_layers: int = 4, blocks: tuple = (2,), dropout: float = 0.1, **kw):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from vpbench.train.config import ContrastiveConfig
    from vpbench.train.model import SFTContrastiveModel

    c = Qwen2_5_VLConfig.from_pretrained(env["model"], attn_implementation="sdpa")
    c.text_config.num_hidden_layers = n_layers
    c.text_config.layer_types = ["full_attention"] * n_layers
    torch.manual_seed(0)
    m = Qwen2_5_VLForConditionalGeneration(c)
    cfg = ContrastiveConfig(blocks=blocks, proj_dim=8, proj_hidden=16, visual_dropout=dropout)
    return SFTContrastiveModel(m, cfg, ids, **kw)


# -- the vision tower works per temporal patch ---------------------------------------------------
def test_vision_tower_is_independent_per_temporal_patch(env: dict) -> None:
    w = _wrapped(env, None).eval()
    tower = w.model.model.visual

    def visual(pixels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:  # merged tokens [N/4, d]
        out = tower(pixels, grid)
        return getattr(out, "pooler_output", out)  # transformers 5.x returns a ModelOutput

    # 10x8 patches -> 5x4 merged tokens; window 112 px = 4x4 merged -> 2 windows per slice (one padded)
    t, h, wd = 3, 10, 8
    torch.manual_seed(3)
    pv = torch.randn(t * h * wd, 3 * 2 * 14 * 14)
    with torch.no_grad():
        full = visual(pv, torch.tensor([[t, h, wd]]))
        n = h * wd // 4
        for j in range(t):
            alone = visual(pv[j * h * wd:(j + 1) * h * wd], torch.tensor([[1, h, wd]]))
            torch.testing.assert_close(alone, full[j * n:(j + 1) * n], atol=1e-6, rtol=0)
        pair = visual(torch.cat([pv[:h * wd], pv[2 * h * wd:]]), torch.tensor([[2, h, wd]]))  # slices 0 and 2
    torch.testing.assert_close(pair, torch.cat([full[:n], full[2 * n:]]), atol=1e-6, rtol=0)


def test_changed_temporal_patches_by_hand() -> None:
    from vpbench.train.contrastive import changed_temporal_patches

    grid = torch.tensor([[2, 2, 2], [3, 2, 2]])  # 8 + 12 patch rows, 4 rows per temporal patch
    pv = torch.zeros(20, 5)
    deg = pv.clone()
    deg[5, 0] = 1.0  # video 0, patch 1
    deg[8, 4] = -2.0  # video 1, patch 0
    deg[19, 2] = float("nan")  # video 1, patch 2
    assert changed_temporal_patches(pv, deg, grid) == [[1], [0, 2]]
    assert changed_temporal_patches(pv, pv.clone(), grid) == [[], []]
    with pytest.raises(ValueError, match="shape"):
        changed_temporal_patches(pv, deg[:-4], grid)
    with pytest.raises(ValueError, match="covers 16 patches but pixel_values has 20 rows"):
        changed_temporal_patches(pv, deg, torch.tensor([[2, 2, 2], [2, 2, 2]]))


def test_changed_patches_are_the_key_frames_patches(env: dict) -> None:
    from vpbench.keyframes.degrade import degrade
    from vpbench.models.qwen_inputs import VisionPreproc, patchify_with
    from vpbench.train.contrastive import changed_temporal_patches

    frames = np.random.default_rng(0).integers(0, 256, size=(8, 56, 56, 3), dtype=np.uint8)
    pre = VisionPreproc.from_pretrained(env["model"])
    pv, grid = patchify_with(frames, pre)
    deg, _ = patchify_with(degrade(frames, (0, 3, 6)), pre)
    # key 0 has no predecessor (unchanged); frame 3 sits in temporal patch 1, frame 6 in patch 3
    assert changed_temporal_patches(torch.from_numpy(pv), torch.from_numpy(deg), torch.from_numpy(grid)) == [[1, 3]]


def test_splice_temporal_patches_by_hand() -> None:
    from vpbench.train.contrastive import splice_temporal_patches

    base = torch.arange(6.0)[:, None]  # 3 temporal patches of 2 tokens
    out = splice_temporal_patches(base, torch.tensor([[10.0], [11.0], [12.0], [13.0]]), [0, 2], 2)
    assert out[:, 0].tolist() == [10.0, 11.0, 2.0, 3.0, 12.0, 13.0]
    assert base[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert splice_temporal_patches(base, base[:0], [], 2) is base
    with pytest.raises(ValueError, match="3 rows for 2 patches"):
        splice_temporal_patches(base, base[:3], [0, 1], 2)


def test_spliced_features_equal_full_recompute(env: dict) -> None:
    from vpbench.train.contrastive import changed_temporal_patches

    batch, ids, exs = _batch(env)
    changed = changed_temporal_patches(batch.pixel_values, batch.pixel_values_deg, batch.video_grid_thw)
    t = int(batch.video_grid_thw[0, 0])
    assert any(changed) and all(len(c) < t for c in changed), changed  # a real splice, not a copy
    w = _wrapped(env, ids).eval()
    grads = {}
    for splice in (True, False):
        w.splice_vision = splice
        w.zero_grad(set_to_none=True)
        fv, fd = w.paired_video_features(batch.pixel_values, batch.pixel_values_deg, batch.video_grid_thw)
        feats = torch.cat([*fv, *fd])
        grads[splice] = feats.detach()
        weight = torch.linspace(-1, 1, feats.numel()).view_as(feats)
        (feats * weight).sum().backward()
        grads[(splice, "g")] = [p.grad.clone() for p in w.model.model.visual.parameters()]
    torch.testing.assert_close(grads[True], grads[False], atol=1e-6, rtol=0)
    for a, b in zip(grads[(True, "g")], grads[(False, "g")]):  # same sums, different order of terms
        torch.testing.assert_close(a, b, atol=1e-5 * float(b.abs().max()), rtol=1e-5)


# -- block max(l) on the eos rows only ------------------------------------------------------------
def test_query_rows_mask_equals_rows_of_full_mask(env: dict) -> None:
    from vpbench.train.contrastive import block_attention_mask

    batch, _, _ = _batch(env, n=2, side="left")
    cl = batch.cl
    for iso in (True, False):
        full = block_attention_mask(cl.segment_ids, cl.attention_mask, iso)
        rows = block_attention_mask(cl.segment_ids, cl.attention_mask, iso, query_positions=cl.eos_positions)
        r = torch.arange(2)[:, None]
        assert torch.equal(rows[:, 0], full[:, 0][r, cl.eos_positions])


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("blocks", [(2,), (1, 3)])
def test_rows_only_top_block_equals_full_block(env: dict, side: str, blocks: tuple) -> None:
    from vpbench.train.model import rows_only_supported

    batch, ids, _ = _batch(env, n=2, side=side)
    w = _wrapped(env, ids, blocks=blocks, dropout=0.0).eval()
    assert rows_only_supported(w.model.model.language_model.layers[max(blocks) - 1], False)  # a real comparison
    n = batch.video_grid_thw.shape[0]
    grid2 = batch.video_grid_thw.repeat_interleave(2, dim=0)
    spgt2 = batch.second_per_grid_ts.repeat_interleave(2)
    with torch.no_grad():
        fv, fd = w.paired_video_features(batch.pixel_values, batch.pixel_values_deg, batch.video_grid_thw)
        video = torch.cat([f for pair in zip(fv, fd) for f in pair])
        for iso in (True, False):
            got = {}
            for rows_only in (True, False):
                w.rows_only_top = rows_only
                got[rows_only] = w.encode_blocks(batch.cl, video, grid2, spgt2, iso)
            for b in blocks:
                assert got[True][b].shape == (n, 3, 64)
                torch.testing.assert_close(got[True][b], got[False][b], atol=1e-5, rtol=1e-5)


def test_rows_only_top_block_eager_attention(env: dict) -> None:
    batch, ids, _ = _batch(env, n=2, side="left")
    w = _wrapped(env, ids, blocks=(2,), dropout=0.0).eval()
    w.model.set_attn_implementation("eager")
    assert w.model.model.language_model.layers[1].self_attn.config._attn_implementation == "eager"
    from vpbench.train.model import rows_only_supported

    assert rows_only_supported(w.model.model.language_model.layers[1], False)
    with torch.no_grad():
        fv, fd = w.paired_video_features(batch.pixel_values, batch.pixel_values_deg, batch.video_grid_thw)
        video = torch.cat([f for pair in zip(fv, fd) for f in pair])
        got = {}
        for rows_only in (True, False):
            w.rows_only_top = rows_only
            got[rows_only] = w.encode_blocks(batch.cl, video, batch.video_grid_thw.repeat_interleave(2, 0),
                                             batch.second_per_grid_ts.repeat_interleave(2), True)[2]
    torch.testing.assert_close(got[True], got[False], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_full_step_matches_reference_paths(env: dict, checkpointing: bool) -> None:
    """Training mode, dropout 0.1 (same RNG draws on both paths): loss and every gradient agree."""
    from vpbench.train.model import enable_activation_checkpointing, rows_only_supported

    batch, ids, _ = _batch(env, n=3)
    w = _wrapped(env, ids, blocks=(1, 2)).train()
    if checkpointing:
        enable_activation_checkpointing(w.model)
    assert rows_only_supported(w.model.model.language_model.layers[1], True)
    res = {}
    for fast in (True, False):
        w.splice_vision = w.rows_only_top = fast
        w.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        out = w(batch)
        out["loss"].backward()
        res[fast] = (out, {k: p.grad.clone() for k, p in w.named_parameters() if p.grad is not None})
    (a, ga), (b, gb) = res[True], res[False]
    for k in ("loss", "sft_sum", "v2v", "t2v", "v2t"):
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-5)
    assert ga.keys() == gb.keys()
    assert {k.split(".")[0] for k in ga} == {"model", "heads"}
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], atol=1e-6, rtol=1e-4, msg=k)


# -- no dropout: the view pass is segment 0 ----------------------------------------------------
def test_view_pass_skipped_without_dropout_is_exact(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpbench.train.losses import average_terms, contrastive_terms

    batch, ids, _ = _batch(env, n=3)
    w = _wrapped(env, ids, blocks=(1, 2), dropout=0.1).eval()
    calls = []
    real = type(w).encode_blocks
    monkeypatch.setattr(type(w), "encode_blocks", lambda self, *a, **k: calls.append(a[0]) or real(self, *a, **k))
    with torch.no_grad():
        out = w(batch)
        assert calls == [batch.cl]  # one contrastive pass, no view pass
        n = batch.video_grid_thw.shape[0]
        fv = w.video_features(batch.pixel_values, batch.video_grid_thw)
        fd = w.video_features(batch.pixel_values_deg, batch.video_grid_thw)
        inter = torch.cat([f for pair in zip(fv, fd) for f in pair])
        g_cl = w.encode_blocks(batch.cl, inter, batch.video_grid_thw.repeat_interleave(2, 0),
                               batch.second_per_grid_ts.repeat_interleave(2), True)
        g_view = w.encode_blocks(batch.view, torch.cat(fv), batch.video_grid_thw, batch.second_per_grid_ts, False)
        terms = average_terms([contrastive_terms(w.heads.v(b, g_cl[b][:, 0]), w.heads.v(b, g_view[b][:, 0]),
                                                 w.heads.v(b, g_cl[b][:, 1]), w.heads.t(b, g_cl[b][:, 2]),
                                                 w.cfg.temperature) for b in (1, 2)])
    assert g_cl[2].shape[0] == n
    for k in ("v2v", "t2v", "v2t"):
        torch.testing.assert_close(out[k], terms[k], atol=1e-5, rtol=1e-5)


# -- decoded clips cached per dataset (data.frame_cache_mb) -----------------------------------------
def test_frame_cache_is_exact_bounded_and_read_only(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples with the cache equal those without, byte for byte; a clip is decoded once while it fits;
    the cache never holds more than data.frame_cache_mb; cached arrays cannot be written."""
    import dataclasses

    from transformers import AutoTokenizer

    import vpbench.video.decode as decode
    from vpbench.errors import ConfigError
    from vpbench.train.config import load_config
    from vpbench.train.data import SFTDataset
    from vpbench.train.manifest import read_manifest

    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "recipes/configs/sft_contrastive/tiny.yaml",
                      {"model.path": str(env["model"]), "data.manifest": str(env["manifest"])})
    tok = AutoTokenizer.from_pretrained(env["model"])
    exs = read_manifest(env["manifest"])
    calls: list[str] = []
    real = decode.decode_frames
    monkeypatch.setattr(decode, "decode_frames", lambda p, *a, **k: calls.append(str(p)) or real(p, *a, **k))

    plain = SFTDataset(exs, cfg.data, env["model"], tok)
    reference = [plain[i] for i in range(len(exs))] * 2
    assert len(calls) == len(exs) and plain.cache_hits == 0  # off by default: one decode per item
    calls.clear()
    cached = SFTDataset(exs, dataclasses.replace(cfg.data, frame_cache_mb=64), env["model"], tok)
    got = [cached[i] for i in range(len(exs))] + [cached[i] for i in range(len(exs))]
    assert len(calls) == len(exs) and cached.cache_hits == len(exs)
    for a, b in zip(reference, got):
        assert a.id == b.id and a.input_ids == b.input_ids and a.key_frames == b.key_frames
        assert np.array_equal(a.pixel_values, b.pixel_values) and np.array_equal(a.pixel_values_deg, b.pixel_values_deg)
    clip = cached.frames(exs[0]).array
    assert not clip.flags.writeable
    with pytest.raises(ValueError):
        clip[0, 0, 0, 0] = 1
    # a bound of 1.5 clips keeps one (the most recent): alternating two clips decodes every time
    bound = 1.5 * clip.nbytes / 2**20
    small = SFTDataset(exs, dataclasses.replace(cfg.data, frame_cache_mb=bound), env["model"], tok)
    calls.clear()
    for i in (0, 1, 0, 1, 1):
        small.frames(exs[i])
    assert len(calls) == 4 and small.cache_hits == 1 and small._cache_bytes == clip.nbytes
    with pytest.raises(ConfigError, match="frame_cache_mb"):
        load_config(root / "recipes/configs/sft_contrastive/tiny.yaml", {"data.frame_cache_mb": "-1"})
    # prefill (the recipe's start when the cache is on): every clip decoded once, on 2 threads, up front;
    # the examples are the uncached ones; a bound of 1.5 clips stops after the first clip
    calls.clear()
    pre = SFTDataset(exs, dataclasses.replace(cfg.data, frame_cache_mb=64), env["model"], tok)
    n_clips = len({str(e.video) for e in exs})
    assert pre.prefill_frames(threads=2) == n_clips and sorted(calls) == sorted({str(e.video) for e in exs})
    assert pre.prefill_frames(threads=2) == 0  # nothing left to decode
    calls.clear()
    for i, a in enumerate(reference[:len(exs)]):
        b = pre[i]
        assert np.array_equal(a.pixel_values, b.pixel_values) and np.array_equal(a.pixel_values_deg, b.pixel_values_deg)
    assert calls == [] and pre.cache_hits == len(exs)
    assert not pre.frames(exs[0]).array.flags.writeable
    capped = SFTDataset(exs, dataclasses.replace(cfg.data, frame_cache_mb=bound), env["model"], tok)
    assert capped.prefill_frames(threads=2) == 1 and capped._cache_bytes == clip.nbytes
    assert SFTDataset(exs, cfg.data, env["model"], tok).prefill_frames() == 0  # cache off: nothing decoded
