"""The gate's statistics against scipy and hand-computed values on fixed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, bootstrap, norm

from vpbench.gate.align import align, align_gap
from vpbench.gate.compare import StatsSettings, compare_metric, parse_metric
from vpbench.gate.sides import Row, TaskSide
from vpbench.gate.verdict import Verdict, decide_failure, decide_metric, n_to_decide


def side(scores, clusters=None, groups=None, parsed=None, key_absent=None, name="t") -> TaskSide:
    n = len(scores)
    rows = tuple(Row(sample_id=f"s{i}", cluster=(clusters[i] if clusters else ""), answer="A",
                     parsed=(parsed[i] if parsed else "A"), scores={"acc": float(scores[i])},
                     groups=(groups[i] if groups else {}), response=f"resp{i}") for i in range(n))
    absent = ()
    if key_absent is not None:
        absent = tuple(Row(f"s{i}", r.cluster, "A", "A", {"acc": float(key_absent[i])}, r.groups)
                       for i, r in enumerate(rows))
    return TaskSide(name, "1", "p", "parser@1", "h", n, False, rows, absent, "{}" if absent else "")


def cmp(base, cand, metric="acc", **st):
    return compare_metric(parse_metric(metric, "acc"), align(base, cand), StatsSettings(**st), align_gap(base, cand))


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (7, 2), (3, 12), (25, 25), (40, 61)])
def test_mcnemar_p_equals_scipy_binomtest(b, c):
    base = [1] * b + [0] * c + [1] * 5 + [0] * 3
    cand = [0] * b + [1] * c + [1] * 5 + [0] * 3
    m = cmp(side(base), side(cand), n_boot=10).mcnemar
    assert (m.b, m.c) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert m.p == pytest.approx(expected, rel=1e-12, abs=0)


def test_paired_ci_equals_scipy_bootstrap_singleton_clusters():
    """Singleton clusters: the gate's resampling is scipy's paired percentile bootstrap, draw for draw."""
    rng = np.random.default_rng(7)
    a = rng.random(37)
    b = a + rng.normal(0.02, 0.1, 37)
    m = cmp(side(a), side(b), n_boot=999, seed=11, ci_level=0.9)
    ref = bootstrap((a, b), lambda x, y, axis=-1: y.mean(axis=axis) - x.mean(axis=axis), paired=True,
                    vectorized=True, n_resamples=999, method="percentile", confidence_level=0.9,
                    rng=np.random.default_rng(11)).confidence_interval
    assert m.delta == pytest.approx(b.mean() - a.mean(), abs=1e-15)
    assert (m.ci_low, m.ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_paired_ci_resamples_videos_equals_scipy_on_cluster_sums():
    """Clustered: resampling videos = scipy's paired bootstrap of (per-video Δ sum, per-video count)
    with the ratio statistic."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 5, size=25)
    clusters = [f"v{k}" for k, s in enumerate(sizes) for _ in range(s)]
    n = len(clusters)
    a = (rng.random(n) < 0.6).astype(float)
    b = (rng.random(n) < 0.5).astype(float)
    m = cmp(side(a, clusters), side(b, clusters), n_boot=1500, seed=5)
    d = b - a
    sums = np.array([d[[i for i, c in enumerate(clusters) if c == f"v{k}"]].sum() for k in range(25)])
    ref = bootstrap((sums, sizes.astype(float)), lambda s, c, axis=-1: s.sum(axis=axis) / c.sum(axis=axis),
                    paired=True, vectorized=True, n_resamples=1500, method="percentile",
                    rng=np.random.default_rng(5)).confidence_interval
    assert (m.ci_low, m.ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert m.n_clusters == 25 and m.n == n


def test_mde_hand_computed_for_singletons():
    """MDE = (z_{0.975} + z_{0.8}) · s_d / √N with s_d the sample SD of the paired differences."""
    a = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1], float)
    b = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1], float)
    m = cmp(side(a), side(b), n_boot=10)
    d = b - a  # two -1, one +1: mean -0.1, unbiased var = (2*(0.9^2) + 1.1^2 + 7*0.1^2)/9
    var = (2 * 0.81 + 1.21 + 7 * 0.01) / 9
    assert m.mde == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(var / 10), rel=1e-12)
    assert var == pytest.approx(np.var(d, ddof=1))
    assert [f.sample_id for f in m.flips] == ["s1", "s6", "s5"]  # losses first, then the gain
    assert (m.flips[0].baseline_response, m.flips[0].candidate_response) == ("resp1", "resp1")


def test_group_macro_failure_and_gap_values_by_hand():
    groups = [{"cat": "x"}] * 4 + [{"cat": "y"}] * 2
    base = side([1, 1, 0, 0, 1, 1], groups=groups)
    cand = side([1, 0, 0, 0, 0, 1], groups=groups, parsed=["A", None, "A", "A", None, "A"])
    g = cmp(base, cand, "acc[cat=y]", n_boot=50)
    assert (g.baseline, g.candidate, g.n) == (1.0, 0.5, 2)
    mac = cmp(base, cand, "acc[macro:cat]", n_boot=50)
    assert mac.baseline == pytest.approx((2 / 4 + 2 / 2) / 2)
    assert mac.candidate == pytest.approx((1 / 4 + 1 / 2) / 2)
    assert mac.delta == pytest.approx(-0.375)
    fr = cmp(base, cand, "failure_rate", n_boot=50)
    assert (fr.baseline, fr.candidate, fr.delta) == (0.0, pytest.approx(2 / 6), pytest.approx(2 / 6))
    assert not fr.higher_is_better
    gap_b = side([1, 1, 1, 1], key_absent=[0, 0, 1, 1])     # gap 0.5
    gap_c = side([1, 1, 1, 0], key_absent=[1, 1, 1, 0])     # gap 0.0
    gp = cmp(gap_b, gap_c, "perception_gap", n_boot=50)
    assert (gp.baseline, gp.candidate, gp.delta) == (0.5, 0.0, -0.5)


def test_verdict_boundaries_and_n_to_decide():
    base = side([1] * 10)
    c = cmp(base, side([1] * 10), n_boot=10)
    assert decide_metric(c, 1.0, min_n=5).verdict is Verdict.PASS
    assert decide_metric(c, 1.0, min_n=50).verdict is Verdict.INCONCLUSIVE  # below min_n
    assert decide_metric(c, 1.0, min_n=50).n_needed == 50
    # Δ = −7 pts, CI [−25, 0], margin 5 → straddles; n' = n (h/|Δ+m|)² with h = hi − Δ
    assert n_to_decide(-0.07, -0.25, 0.0, 14, -0.05) == math.ceil(14 * (0.07 / 0.02) ** 2)
    assert n_to_decide(-0.01, -0.05, 0.03, 100, -0.02) == math.ceil(100 * (0.04 / 0.01) ** 2)
    assert n_to_decide(-0.02, -0.05, 0.01, 100, -0.02) is None
    import dataclasses
    reg = dataclasses.replace(c, delta=-0.1, ci_low=-0.15, ci_high=-0.051)
    assert decide_metric(reg, 5.0, 5).verdict is Verdict.REGRESSION
    edge = dataclasses.replace(c, delta=-0.03, ci_low=-0.05, ci_high=-0.01)
    assert decide_metric(edge, 5.0, 5).verdict is Verdict.INCONCLUSIVE  # lo == −m is not > −m
    fail = dataclasses.replace(c, metric="failure_rate", kind="failure_rate", delta=0.05, ci_low=0.011, ci_high=0.09)
    assert decide_failure(fail, 1.0).verdict is Verdict.REGRESSION
    assert decide_failure(fail, 2.0).verdict is Verdict.PASS


def test_bonferroni_policy_splits_the_level_over_every_call():
    from vpbench.gate.policy import policy_from_mapping

    body = {"tasks": {"motionbench": {"metrics": {"acc": {"margin": 1}, "acc[question_type=CM]": {"margin": 5}}},
                      "mvbench": {"metrics": {"acc": {"margin": 1}}}}, "multiplicity": "bonferroni"}
    p = policy_from_mapping(body)
    assert p.n_calls == 5  # three metrics + two failure-rate guards
    assert p.stats().ci_level == pytest.approx(1 - 0.05 / 5)
    assert policy_from_mapping({**body, "multiplicity": "none"}).stats().ci_level == 0.95
    with pytest.raises(Exception, match="did you mean 'bonferroni'"):
        policy_from_mapping({**body, "multiplicity": "bonferoni"})
