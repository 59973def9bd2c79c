"""Key-frame selection, degradation, sparsification and the end-to-end key_absent function."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import peak_prominences

from vpbench.errors import ConfigError, DataError
from vpbench.keyframes.degrade import degrade, key_absent
from vpbench.keyframes.scorers import MotionEnergyScorer
from vpbench.keyframes.select import SelectConfig, local_maxima, prominence, select_keys
from vpbench.keyframes.sparsify import SparsifyConfig, apply_plan, merge_segments, sparsify_plan


# ------------------------------------------------------------------------------------------------ select
@pytest.mark.parametrize(
    "scores, expected",
    [
        ([1, 3, 2, 5, 4], [1, 3]),
        ([1, 3, 3, 1], [1]),  # plateau: first frame wins
        ([1, 3, 3, 3, 2, 4, 4], [1, 5]),  # plateau at the right edge: its first frame
        ([5, 5, 1, 2], [0, 3]),  # plateau at the left edge, rise at the right edge
        ([3, 1, 2], [0, 2]),  # edges compare with their one neighbour
        ([1, 2, 3, 4], [3]),  # increasing
        ([4, 3, 2, 1], [0]),  # decreasing
        ([2, 2, 2, 2], [0]),  # constant: one plateau, frame 0
        ([1, 3, 3, 5], [1, 3]),  # shoulder counts (literal rule)
        ([1, 2], [1]),
        ([2, 1], [0]),
        ([1, 1], [0]),
        ([7], []),  # T = 1: no neighbour to exceed
        ([], []),
    ],
)
def test_local_maxima_rule(scores, expected):
    assert local_maxima(scores) == expected


def test_prominence_matches_scipy_for_interior_peaks():
    s = np.array([0.0, 2.0, 1.0, 4.0, 1.5, 1.5, 3.0, 0.5, 2.5, 2.5, 0.0])
    interior = [t for t in local_maxima(s) if 0 < t < len(s) - 1]
    assert interior == [1, 3, 6, 8]
    ref = peak_prominences(s, interior)[0]
    assert [prominence(s, t) for t in interior] == pytest.approx(ref.tolist())
    assert ref.tolist() == pytest.approx([1.0, 4.0, 1.5, 2.0])  # hand check of the reference


def test_prominence_edges_use_the_existing_side():
    s = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    assert local_maxima(s) == [0, 2, 4]
    # frame 0: right walk 1, 3, 2, 4 (all <= 5) → base 1 → 4; frame 4: left walk down to 1 → base 1 → 3
    assert prominence(s, 0) == 4.0
    assert prominence(s, 4) == 3.0
    assert prominence(s, 2) == 1.0  # bases 1 (left) and 2 (right) → 3 - 2
    assert local_maxima(s, min_prominence=1.5) == [0, 4]
    assert local_maxima(s, min_prominence=3.5) == [0]
    assert local_maxima(s, min_prominence=4.5) == []


def test_shoulder_is_removed_by_any_positive_prominence():
    assert local_maxima([1, 3, 3, 5], min_prominence=1e-6) == [3]


def test_max_key_ratio_keeps_top_scores_ties_to_earlier():
    s = [0, 5, 0, 3, 0, 5, 0, 4, 0, 3]  # maxima 1(5) 3(3) 5(5) 7(4) 9(3)
    assert local_maxima(s) == [1, 3, 5, 7, 9]
    assert local_maxima(s, max_key_ratio=0.3) == [1, 5, 7]  # floor(3.0) = 3
    assert local_maxima(s, max_key_ratio=0.4) == [1, 3, 5, 7]  # 3 vs 3 tie → earlier frame 3
    assert local_maxima(s, max_key_ratio=0.1) == [1]  # 5 vs 5 tie → earlier frame 1
    assert local_maxima(s, max_key_ratio=0.09) == []  # floor(0.9) = 0
    assert len(local_maxima([0, 1] * 50, max_key_ratio=0.29)) == 29  # 0.29 * 100 float error absorbed


def test_select_bad_input():
    with pytest.raises(DataError, match="NaN"):
        local_maxima([1.0, float("nan"), 2.0])
    with pytest.raises(DataError, match="1-D"):
        local_maxima(np.zeros((2, 3)))
    with pytest.raises(ConfigError):
        SelectConfig(max_key_ratio=1.5)
    with pytest.raises(ConfigError):
        local_maxima([1, 2], min_prominence=-1)
    assert select_keys([1, 3, 2], SelectConfig()) == [1]


# ----------------------------------------------------------------------------------------------- degrade
def _clip(t: int = 6) -> np.ndarray:
    frames = np.zeros((t, 2, 3, 3), dtype=np.uint8)
    for i in range(t):
        frames[i] = 10 * (i + 1)
    return frames


def test_degrade_uses_original_predecessor():
    v = _clip()
    out = degrade(v, [0, 2, 3, 5])
    assert out.shape == v.shape and out.dtype == v.dtype
    assert [int(f[0, 0, 0]) for f in out] == [10, 20, 20, 30, 50, 50]  # 3 copies ORIGINAL 2, not degraded 2
    assert [int(f[0, 0, 0]) for f in v] == [10, 20, 30, 40, 50, 60]  # input untouched
    assert np.array_equal(degrade(v, []), v)


def test_degrade_bad_indices():
    with pytest.raises(DataError, match="outside"):
        degrade(_clip(3), [3])
    with pytest.raises(DataError, match="T, H, W"):
        degrade(np.zeros((3, 4, 3), np.uint8), [1])


# ------------------------------------------------------------------------------------------------ sparsify
def test_sparsify_paper_example_adapts_to_target():
    plan = sparsify_plan(300, 30.0, [(100, 175)], clip_id="mmau_1")
    r = plan.report
    assert (r.n_key_src, r.ratio_before) == (75, 0.25)
    assert r.n_out_frames == 75 + 1425  # ceil(75 * 0.95 / 0.05) non-key frames
    assert r.ratio_after == pytest.approx(0.05) and r.met_target
    assert r.nonkey_fps_effective == pytest.approx(1425 * 30 / 225)
    # split: 1 each + 1423 * (100, 125) / 225 → 632.44 / 790.56 → 632 + 791 (largest remainder) → 633, 792
    assert plan.key_segments_out == ((633, 708),)
    assert plan.frame_indices[633:708] == tuple(range(100, 175))
    assert sum(plan.is_key) == 75 and plan.is_key[632] is False and plan.is_key[633] is True
    assert list(plan.frame_indices) == sorted(plan.frame_indices)


def test_sparsify_without_adaption_is_plain_8fps():
    plan = sparsify_plan(300, 30.0, [(100, 175)], SparsifyConfig(adapt_nonkey_fps=False))
    r = plan.report
    # gaps of 100 and 125 frames at 8/30 → ceil(26.67) = 27, ceil(33.33) = 34
    assert r.n_out_frames == 27 + 75 + 34
    assert r.ratio_after == pytest.approx(75 / 136) and not r.met_target
    assert plan.frame_indices[:3] == (0, 3, 7)  # floor(j * 100 / 27)
    assert r.n_repeated == 0


def test_sparsify_low_fps_source_repeats_nonkey_frames():
    # 4 fps source: 8 fps on non-key segments doubles their frames; key ratio 2/10 → 2/18
    plan = sparsify_plan(10, 4.0, [(4, 6)], SparsifyConfig(target_ratio=0.2))
    assert plan.frame_indices == (0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 6, 7, 7, 8, 8, 9, 9)
    r = plan.report
    assert r.ratio_after == pytest.approx(2 / 18) and r.met_target and r.n_repeated == 8
    assert r.nonkey_fps_effective == pytest.approx(8.0)


def test_sparsify_cap_and_edge_cases():
    capped = sparsify_plan(300, 30.0, [(100, 175)], SparsifyConfig(max_nonkey_fps=60.0))
    assert capped.report.n_out_frames == 75 + 200 + 250 and not capped.report.met_target
    no_key = sparsify_plan(30, 30.0, [])
    assert no_key.report.ratio_before == 0 and no_key.report.n_out_frames == 8 and no_key.report.met_target
    all_key = sparsify_plan(5, 25.0, [(0, 5)])
    assert all_key.frame_indices == (0, 1, 2, 3, 4) and not all_key.report.met_target
    assert merge_segments([(5, 8), (0, 2), (2, 3), (6, 9)], 10) == [(0, 3), (5, 9)]
    with pytest.raises(DataError, match="outside"):
        sparsify_plan(10, 25.0, [(8, 12)], clip_id="c1")
    with pytest.raises(ConfigError):
        SparsifyConfig(target_ratio=0.0)
    frames = np.arange(10)[:, None, None, None] * np.ones((1, 1, 1, 3), np.uint8)
    got = apply_plan(frames, sparsify_plan(10, 4.0, [(4, 6)], SparsifyConfig(target_ratio=0.2)))
    assert got.shape == (18, 1, 1, 3) and got[:, 0, 0, 0].tolist()[8:10] == [4, 5]
    with pytest.raises(DataError, match="re-plan"):
        apply_plan(frames[:9], sparsify_plan(10, 4.0, [(4, 6)]))


# ----------------------------------------------------------------------------------------------- key_absent
def test_key_absent_end_to_end_with_motion_energy():
    v = np.zeros((8, 4, 4, 3), dtype=np.uint8)
    v[3] = 200  # a one-frame flash: energy peaks at 3 (onset) and 4 (offset) → plateau, frame 3 wins
    v[6:] = 50
    res = key_absent(v, ["flash"], MotionEnergyScorer())
    assert res.scores.tolist() == [0, 0, 0, 200, 200, 0, 50, 0]
    assert res.key_idx == (0, 3, 6)  # frame 0: 0 >= 0 at the edge (a no-op when degrading)
    assert res.degraded.shape == v.shape and res.degraded.dtype == v.dtype
    assert np.array_equal(res.degraded[3], v[2]) and np.array_equal(res.degraded[6], v[5])
    assert np.array_equal(np.delete(res.degraded, [3, 6], 0), np.delete(v, [3, 6], 0))
    strict = key_absent(v, ["flash"], MotionEnergyScorer(), SelectConfig(min_prominence=100))
    assert strict.key_idx == (3,)


def test_key_absent_rejects_wrong_score_shape():
    class Bad:
        name = "bad"

        def score(self, frames, keywords):
            return np.zeros(len(frames) + 1)

    with pytest.raises(DataError, match="one score per frame"):
        key_absent(np.zeros((3, 2, 2, 3), np.uint8), ["x"], Bad())
