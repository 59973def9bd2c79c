"""Tests for vpbench.metrics.stats: exact values by hand, and bootstrap properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from vpbench.metrics.stats import (
    ClusterIndex,
    cluster_bootstrap,
    cluster_bootstrap_fn,
    cluster_standard_error,
    mcnemar_exact,
    minimum_detectable_effect,
    paired_cluster_bootstrap,
    wilson_interval,
)

Z975 = 1.959963984540054  # Phi^-1(0.975)
Z80 = 0.8416212335729143  # Phi^-1(0.8)


# ----------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize(
    "b,c,expected",
    [
        (0, 5, 2 / 2**5),  # 2 * P[X <= 0], X ~ Bin(5, 1/2) = 0.0625
        (5, 0, 0.0625),
        (3, 3, 1.0),  # 2 * P[X <= 3] of Bin(6) = 2 * 42/64 > 1 -> capped
        (1, 9, 2 * (1 + 10) / 2**10),  # n = 10: 2 * (C(10,0) + C(10,1)) / 1024 = 0.021484375
        (2, 10, 2 * (1 + 12 + 66) / 2**12),  # 0.03857421875
        (0, 0, 1.0),
    ],
)
def test_mcnemar_exact_hand_tables(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=0)


def test_mcnemar_matches_scipy_binomtest():
    for b, c in [(7, 19), (40, 61), (141, 197), (250, 250), (0, 1)]:
        ref = binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue
        assert mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-9)


def test_mcnemar_rejects_bad_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)
    with pytest.raises(ValueError):
        mcnemar_exact(1.5, 3)


# ----------------------------------------------------------------------------- Wilson


def test_wilson_5_of_10_by_hand():
    # centre = (0.5 + z^2/20) / (1 + z^2/10) = 0.5;
    # half = z / (1 + z^2/10) * sqrt(0.25/10 + z^2/400) = 1.41599... * 0.186020... = 0.2634069095
    z2 = Z975**2
    half = Z975 / (1 + z2 / 10) * math.sqrt(0.025 + z2 / 400)
    low, high = wilson_interval(5, 10)
    assert half == pytest.approx(0.2634069095, abs=1e-9)
    assert low == pytest.approx(0.5 - half, abs=1e-12)
    assert high == pytest.approx(0.5 + half, abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)


def test_wilson_zero_successes():
    # p = 0: centre = half = (z^2/20)/(1+z^2/10) -> low = 0, high = (z^2/10)/(1+z^2/10)
    z2 = Z975**2
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-15)
    assert high == pytest.approx((z2 / 10) / (1 + z2 / 10), abs=1e-12)


def test_wilson_rejects_bad_input():
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


# ----------------------------------------------------------------------------- bootstrap


def _binary(n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(np.float64)


def test_singleton_clusters_equal_plain_bootstrap():
    values = np.random.default_rng(3).normal(size=57)
    clusters = [f"c{i}" for i in range(57)]
    rng = np.random.default_rng(11)
    plain = np.array([values[rng.integers(0, 57, size=57)].mean() for _ in range(300)])
    expected = np.quantile(plain, [0.025, 0.975])
    got = cluster_bootstrap(values, clusters, n_boot=300, seed=11)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # the general (fn) path draws the same resamples
    got_fn = cluster_bootstrap_fn(57, clusters, lambda idx: values[idx].mean(), n_boot=300, seed=11)
    np.testing.assert_allclose(got_fn, expected, rtol=1e-12, atol=1e-12)


def test_bootstrap_deterministic_by_seed():
    v = _binary(400, 0.6, 0)
    cl = [str(i // 3) for i in range(400)]
    a = cluster_bootstrap(v, cl, n_boot=200, seed=5)
    assert a == cluster_bootstrap(v, cl, n_boot=200, seed=5)
    assert a != cluster_bootstrap(v, cl, n_boot=200, seed=6)


def test_ci_contains_mean_and_is_wider_with_clustering():
    base = _binary(100, 0.5, 1)
    # each item duplicated 4x inside its video: clustering must not shrink the CI
    v = np.repeat(base, 4)
    videos = [str(i // 4) for i in range(400)]
    singles = [str(i) for i in range(400)]
    lo_c, hi_c = cluster_bootstrap(v, videos, n_boot=500, seed=0)
    lo_s, hi_s = cluster_bootstrap(v, singles, n_boot=500, seed=0)
    assert lo_c <= v.mean() <= hi_c
    assert lo_s <= v.mean() <= hi_s
    assert (hi_c - lo_c) > 1.5 * (hi_s - lo_s)  # ~ sqrt(4) = 2x wider


def test_cluster_members_gather():
    clusters = ["b", "a", "b", "c", "a", "b"]
    idx = ClusterIndex.build(clusters)
    # first-appearance numbering: b=0, a=1, c=2
    assert idx.codes.tolist() == [0, 1, 0, 2, 1, 0]
    assert idx.counts.tolist() == [3, 2, 1]
    assert idx.members(np.array([2, 0, 0, 1])).tolist() == [3, 0, 2, 5, 0, 2, 5, 1, 4]


def test_fn_path_equals_fast_mean_path_with_clusters():
    v = np.random.default_rng(2).random(300)
    cl = [f"v{(i * 7) % 45}" for i in range(300)]  # interleaved, unequal cluster sizes
    fast = cluster_bootstrap(v, cl, n_boot=250, seed=9)
    general = cluster_bootstrap_fn(300, cl, lambda idx: float(np.mean(v[idx])), n_boot=250, seed=9)
    np.testing.assert_allclose(fast, general, rtol=1e-12)
    # a non-mean stat goes through the general path
    lo, hi = cluster_bootstrap(v, cl, stat=np.median, n_boot=250, seed=9)
    assert lo <= np.median(v) <= hi


def test_bootstrap_input_errors():
    with pytest.raises(ValueError):
        cluster_bootstrap(np.ones(3), ["a", "b"])
    with pytest.raises(ValueError):
        cluster_bootstrap(np.array([1.0, np.nan]), ["a", "b"])
    with pytest.raises(ValueError):
        cluster_bootstrap(np.ones(2), ["a", "b"], alpha=1.5)
    with pytest.raises(ValueError):
        cluster_bootstrap(np.ones(0), [])
    with pytest.raises(ValueError):
        cluster_bootstrap_fn(2, ["a", "b"], lambda idx: float("nan"), n_boot=10)


def test_paired_bootstrap_matches_bootstrap_of_differences():
    rng = np.random.default_rng(4)
    a = (rng.random(600) < 0.55).astype(float)
    flip = rng.random(600) < 0.15
    b = np.where(flip, 1 - a, a)
    cl = [str(i // 5) for i in range(600)]
    delta, lo, hi = paired_cluster_bootstrap(a, b, cl, n_boot=400, seed=3)
    assert delta == pytest.approx(b.mean() - a.mean(), abs=1e-15)
    np.testing.assert_allclose((lo, hi), cluster_bootstrap(b - a, cl, n_boot=400, seed=3), rtol=1e-12)
    assert lo <= delta <= hi


def test_paired_bootstrap_constant_shift_has_zero_width():
    a = np.random.default_rng(0).random(50)
    delta, lo, hi = paired_cluster_bootstrap(a, a + 0.1, [str(i // 2) for i in range(50)], n_boot=100)
    assert delta == pytest.approx(0.1)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)


def test_paired_bootstrap_rejects_misaligned():
    with pytest.raises(ValueError):
        paired_cluster_bootstrap(np.ones(3), np.ones(4), ["a", "b", "c"])


def _clustered_binary(rng, n_clusters: int, size: int, a: float, b: float) -> tuple[np.ndarray, list[int]]:
    """Per-video rate p_c ~ Beta(a, b), items ~ Bernoulli(p_c). True mean a / (a + b)."""
    p = rng.beta(a, b, size=n_clusters)
    v = (rng.random((n_clusters, size)) < p[:, None]).astype(float).ravel()
    return v, np.repeat(np.arange(n_clusters), size).tolist()


def test_coverage_on_clustered_binary_data():
    """~95% coverage for the cluster bootstrap; the item bootstrap under-covers (ICC = 1/3)."""
    rng = np.random.default_rng(2024)
    truth = 0.6  # Beta(1.2, 0.8): ICC = 1 / (a + b + 1) = 1/3
    hit_cluster = hit_naive = 0
    sims = 200
    for s in range(sims):
        v, cl = _clustered_binary(rng, 80, 5, 1.2, 0.8)
        lo, hi = cluster_bootstrap(v, cl, n_boot=200, seed=s)
        hit_cluster += lo <= truth <= hi
        lo, hi = cluster_bootstrap(v, list(range(len(v))), n_boot=200, seed=s)
        hit_naive += lo <= truth <= hi
    assert 0.90 <= hit_cluster / sims <= 0.99
    assert hit_naive / sims < 0.85


# ----------------------------------------------------------------------------- SE and MDE


def test_cluster_se_singletons_is_sample_se():
    x = np.random.default_rng(8).random(40)
    se = cluster_standard_error(x, list(range(40)))
    assert se == pytest.approx(x.std(ddof=1) / math.sqrt(40), rel=1e-12)


def test_cluster_se_by_hand():
    # clusters {0,1}, {2}: mean = 1/3... x = [1, 0, 0]; u = [1 - 2/3, -1/3] = [1/3, -1/3]
    # SE^2 = K/(K-1) * sum u^2 / N^2 = 2 * (2/9) / 9 = 4/81
    assert cluster_standard_error(np.array([1.0, 0.0, 0.0]), ["a", "a", "b"]) == pytest.approx(2 / 9)
    with pytest.raises(ValueError):
        cluster_standard_error(np.array([1.0, 0.0]), ["a", "a"])


def test_mde_binary_singletons_formula():
    # N = 100 pairs: 10 with (a=1, b=0), 20 with (a=0, b=1), 70 concordant.
    a = np.array([1] * 10 + [0] * 20 + [1] * 40 + [0] * 30, dtype=float)
    b = np.array([0] * 10 + [1] * 20 + [1] * 40 + [0] * 30, dtype=float)
    p_disc, delta, n = 0.30, 0.10, 100
    expected = (Z975 + Z80) * math.sqrt((p_disc - delta**2) / (n - 1))
    assert minimum_detectable_effect(a, b, list(range(100))) == pytest.approx(expected, rel=1e-12)
    # one-sided 5%: z_{0.95} instead of z_{0.975}
    one_sided = (1.6448536269514722 + Z80) * math.sqrt((p_disc - delta**2) / (n - 1))
    assert minimum_detectable_effect(a, b, list(range(100)), alpha=0.10) == pytest.approx(one_sided, rel=1e-12)


def test_mde_duplicates_inside_a_video_do_not_help():
    rng = np.random.default_rng(5)
    a = (rng.random(60) < 0.5).astype(float)
    b = np.where(rng.random(60) < 0.2, 1 - a, a)
    base = minimum_detectable_effect(a, b, list(range(60)))
    dup = minimum_detectable_effect(np.repeat(a, 3), np.repeat(b, 3), np.repeat(np.arange(60), 3).tolist())
    naive = minimum_detectable_effect(np.repeat(a, 3), np.repeat(b, 3), list(range(180)))
    assert dup == pytest.approx(base, rel=1e-12)
    assert naive < 0.65 * base  # ignoring clusters would claim ~sqrt(3)x more power
