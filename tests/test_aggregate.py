"""Tests for vpbench.metrics.aggregate with hand-made Records and hand-computed values."""

from __future__ import annotations

import pytest

from vpbench.errors import ConfigError, DataError
from vpbench.metrics.aggregate import (
    ci_method,
    group_metrics,
    macro_metric,
    mean_metric,
    scorable,
    simple_aggregate,
)
from vpbench.metrics.stats import cluster_bootstrap
from vpbench.task import StatsOptions
from vpbench.types import Record

STATS = StatsOptions(n_boot=300, seed=0)


def rec(
    sid: str,
    acc: float | None,
    *,
    cluster: str = "",
    answer: str | None = "A",
    parsed: str | None = "A",
    error: str | None = None,
    groups: dict[str, str] | None = None,
    **scores: float,
) -> Record:
    all_scores = dict(scores)
    if acc is not None:
        all_scores["acc"] = acc
    return Record(
        sample_id=sid,
        task="toy",
        cluster=cluster,
        groups=groups or {},
        answer=answer,
        options=("A", "B"),
        meta={},
        request_fingerprint="r",
        protocol_fingerprint="p",
        frame_timestamps_s=(),
        response="A",
        parsed=parsed,
        parser="letter@1",
        scores=all_scores,
        error=error,
    )


def test_mean_metric_three_of_four():
    records = [
        rec("s1", 1.0, cluster="v1"),
        rec("s2", 1.0, cluster="v1"),
        rec("s3", 0.0, cluster="v2", parsed=None),
        rec("s4", 1.0, cluster="v3", error="timeout"),
    ]
    m = mean_metric("acc", records, "acc", STATS)
    assert m.name == "acc"
    assert m.value == 0.75
    assert (m.n, m.n_clusters, m.n_failed) == (4, 3, 2)
    assert m.ci_method == "cluster-bootstrap-percentile(B=300,seed=0)"
    assert m.ci_low <= 0.75 <= m.ci_high
    # the CI is the cluster bootstrap over the video ids
    assert (m.ci_low, m.ci_high) == cluster_bootstrap(
        [1.0, 1.0, 0.0, 1.0], ["v1", "v1", "v2", "v3"], n_boot=300, seed=0
    )


def test_hidden_answer_records_are_excluded():
    records = [
        rec("s1", 1.0, cluster="v1"),
        rec("s2", 0.0, cluster="v2"),
        rec("h1", None, cluster="v3", answer=None, parsed=None),  # no score, no answer
        rec("h2", 0.0, cluster="v4", answer=None),
    ]
    assert [r.sample_id for r in scorable(records)] == ["s1", "s2"]
    m = mean_metric("acc", records, "acc", STATS)
    assert (m.value, m.n, m.n_clusters, m.n_failed) == (0.5, 2, 2, 0)


def test_missing_score_key_names_the_sample():
    records = [rec("s1", 1.0, cluster="v1"), rec("s2", None, cluster="v2", f1=0.5)]
    with pytest.raises(DataError, match=r"'s2'.*no score 'acc'.*f1"):
        mean_metric("acc", records, "acc", STATS)


def test_non_finite_score_raises():
    with pytest.raises(DataError, match="s1"):
        mean_metric("acc", [rec("s1", float("nan"))], "acc", STATS)


def test_no_scorable_records_raises():
    with pytest.raises(DataError, match="no scorable records"):
        mean_metric("acc", [rec("h", None, answer=None)], "acc", STATS)


def test_empty_cluster_is_its_own_cluster():
    records = [rec("s1", 1.0), rec("s2", 0.0), rec("s3", 1.0, cluster="v"), rec("s4", 1.0, cluster="v")]
    assert mean_metric("acc", records, "acc", STATS).n_clusters == 3


def test_ci_method_strings_and_disabled_ci():
    assert ci_method(StatsOptions()) == "cluster-bootstrap-percentile(B=1000,seed=0)"
    assert ci_method(StatsOptions(n_boot=200, seed=7, alpha=0.1)) == (
        "cluster-bootstrap-percentile(B=200,seed=7,level=0.9)"
    )
    m = mean_metric("acc", [rec("a", 1.0), rec("b", 0.0)], "acc", StatsOptions(n_boot=0))
    assert (m.value, m.ci_low, m.ci_high, m.ci_method) == (0.5, None, None, "none")
    with pytest.raises(ConfigError):
        mean_metric("acc", [rec("a", 1.0)], "acc", StatsOptions(n_boot=-1))


def _grouped() -> list[Record]:
    # group "x": 1, 1, 1, 0 -> 0.75 ; group "y": 0, 1 -> 0.5 ; plus one hidden record in "z"
    g = lambda v: {"qtype": v}  # noqa: E731
    return [
        rec("x1", 1.0, cluster="v1", groups=g("x")),
        rec("x2", 1.0, cluster="v1", groups=g("x")),
        rec("x3", 1.0, cluster="v2", groups=g("x")),
        rec("x4", 0.0, cluster="v3", groups=g("x"), parsed=None),
        rec("y1", 0.0, cluster="v3", groups=g("y")),
        rec("y2", 1.0, cluster="v4", groups=g("y")),
        rec("z1", None, cluster="v5", groups=g("z"), answer=None),
    ]


def test_group_metrics_values_names_and_order():
    rows = group_metrics(_grouped(), "acc", "qtype", STATS, names={"x": "Type X"})
    assert [(r.name, r.value, r.n, r.n_clusters, r.n_failed) for r in rows] == [
        ("Type X", 0.75, 4, 3, 1),
        ("y", 0.5, 2, 2, 0),
    ]
    ordered = group_metrics(_grouped(), "acc", "qtype", STATS, order=["y", "w", "x"])
    assert [r.name for r in ordered] == ["y", "x"]
    partial_order = group_metrics(_grouped(), "acc", "qtype", STATS, order=["y"])
    assert [r.name for r in partial_order] == ["y", "x"]


def test_group_metrics_missing_group_key_raises():
    records = _grouped() + [rec("n1", 1.0, cluster="v9")]
    with pytest.raises(DataError, match=r"'n1'.*no group 'qtype'"):
        group_metrics(records, "acc", "qtype", STATS)


def test_macro_differs_from_micro_by_hand_amount():
    records = _grouped()
    micro = mean_metric("acc", records, "acc", STATS).value
    macro = macro_metric("macro_acc", records, "acc", "qtype", STATS)
    assert micro == pytest.approx(4 / 6)
    assert macro.value == pytest.approx((0.75 + 0.5) / 2)  # 0.625
    assert micro - macro.value == pytest.approx(1 / 24)
    assert (macro.n, macro.n_clusters, macro.n_failed) == (6, 4, 1)
    assert macro.ci_method == "cluster-bootstrap-percentile(B=300,seed=0)"
    assert macro.ci_low <= macro.value <= macro.ci_high


def test_macro_bootstrap_recomputes_the_macro_mean():
    # 30 items of group "a" all right, 10 of group "b" all wrong, one video each.
    # Every resample (that contains both groups, i.e. all but ~2^-40 of them) has macro = 0.5
    # exactly, while the micro mean (0.75) varies from resample to resample.
    records = [rec(f"a{i}", 1.0, cluster=f"va{i}", groups={"g": "a"}) for i in range(30)]
    records += [rec(f"b{i}", 0.0, cluster=f"vb{i}", groups={"g": "b"}) for i in range(10)]
    macro = macro_metric("m", records, "acc", "g", STATS)
    assert (macro.value, macro.ci_low, macro.ci_high) == (0.5, 0.5, 0.5)
    micro = mean_metric("acc", records, "acc", STATS)
    assert micro.value == 0.75 and micro.ci_high - micro.ci_low > 0.1


def test_macro_expected_groups():
    records = _grouped()
    ok = macro_metric("m", records, "acc", "qtype", STATS, expected_groups=["x", "y"])
    assert ok.value == pytest.approx(0.625)
    with pytest.raises(DataError, match=r"expected groups \['w'\]"):
        macro_metric("m", records, "acc", "qtype", STATS, expected_groups=["x", "y", "w"])
    with pytest.raises(DataError, match=r"unexpected groups \['y'\]"):
        macro_metric("m", records, "acc", "qtype", STATS, expected_groups=["x"])


def test_simple_aggregate():
    records = [
        rec("s1", 1.0, cluster="v1", groups={"qtype": "x", "len": "short"}, f1=0.5),
        rec("s2", 0.0, cluster="v2", groups={"qtype": "y", "len": "short"}, f1=0.25),
        rec("s3", 1.0, cluster="v2", groups={"qtype": "y", "len": "long"}, f1=1.0),
        rec("s4", 1.0, cluster="v3", groups={"qtype": "x", "len": "long"}, f1=0.25, answer=None),
    ]
    agg_fn = simple_aggregate("acc", ["acc", "f1"], ["qtype", "len"], {"qtype": {"x": "Type X"}})
    agg = agg_fn(records, STATS)
    assert [(m.name, m.value, m.n) for m in agg.metrics] == [("acc", pytest.approx(2 / 3), 3), ("f1", pytest.approx(1.75 / 3), 3)]
    assert list(agg.by_group) == ["qtype", "len"]
    assert [(m.name, m.value) for m in agg.by_group["qtype"]] == [("Type X", 1.0), ("y", 0.5)]
    assert [(m.name, m.value) for m in agg.by_group["len"]] == [("long", 1.0), ("short", 0.5)]
    assert agg.notes == ()


def test_simple_aggregate_hidden_split_and_config_errors():
    agg = simple_aggregate("acc", ["acc"])([rec("h", None, answer=None)], STATS)
    assert agg.metrics == () and agg.by_group == {} and "no scorable records" in agg.notes[0]
    with pytest.raises(ConfigError, match="primary"):
        simple_aggregate("acc", ["f1"])
    with pytest.raises(ConfigError, match="unknown group keys"):
        simple_aggregate("acc", ["acc"], ["qtype"], {"len": {}})
