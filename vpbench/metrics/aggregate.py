"""Turn per-sample records into reported metrics (micro, per-group and macro means with cluster CIs).

Every metric here is a mean of a per-sample score ``r.scores[score_key]`` (0-1 scale) over the
*scorable* records (those with an answer; hidden-answer test items are excluded). CIs come from the
cluster bootstrap of :mod:`vpbench.metrics.stats` with clusters = ``r.cluster`` (the video id); a
record with an empty cluster id is its own cluster. ``StatsOptions.n_boot == 0`` turns CIs off
(``ci_low = ci_high = None``, ``ci_method = "none"``).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from vpbench.errors import ConfigError, DataError
from vpbench.metrics.stats import cluster_bootstrap, cluster_bootstrap_fn
from vpbench.task import Aggregation, StatsOptions
from vpbench.types import MetricResult, Record

__all__ = ["ci_method", "group_metrics", "macro_metric", "mean_metric", "scorable", "simple_aggregate"]


def scorable(records: Sequence[Record]) -> list[Record]:
    """Records with an answer (hidden-answer test items are excluded from every metric)."""
    return [r for r in records if r.answer is not None]


def ci_method(stats: StatsOptions) -> str:
    """The ``MetricResult.ci_method`` string, e.g. ``cluster-bootstrap-percentile(B=1000,seed=0)``.

    A level other than 95% is appended: ``...,seed=0,level=0.9)`` (``level=0.975`` for alpha 0.025).
    """
    if stats.n_boot == 0:
        return "none"
    level = "" if abs(stats.alpha - 0.05) < 1e-12 else f",level={round(1.0 - stats.alpha, 12):g}"
    return f"cluster-bootstrap-percentile(B={stats.n_boot},seed={stats.seed}{level})"


def _check_stats(stats: StatsOptions) -> None:
    if stats.n_boot < 0:
        raise ConfigError(f"stats.n_boot must be >= 0 (0 disables CIs), got {stats.n_boot}")
    if not 0.0 < stats.alpha < 1.0:
        raise ConfigError(f"stats.alpha must be in (0, 1), got {stats.alpha}")


def _scores(recs: Sequence[Record], score_key: str) -> np.ndarray:
    """Scores [N] of ``score_key``; a missing or non-finite score raises DataError naming the sample."""
    out = np.empty(len(recs), dtype=np.float64)
    for i, r in enumerate(recs):
        if score_key not in r.scores:
            have = ", ".join(sorted(r.scores)) or "none"
            raise DataError(
                f"record '{r.sample_id}' (task '{r.task}') has no score '{score_key}' (scores: {have}); "
                f"the task's score function must return '{score_key}' for every scorable record: re-score the run"
            )
        v = float(r.scores[score_key])
        if not np.isfinite(v):
            raise DataError(
                f"record '{r.sample_id}' (task '{r.task}') has a non-finite score {score_key}={v}; "
                "fix the task's score function and re-score the run"
            )
        out[i] = v
    return out


def _clusters(recs: Sequence[Record]) -> list[str]:
    """Cluster id per record; an empty cluster id makes the record its own cluster."""
    return [r.cluster if r.cluster else f"\0sample:{r.sample_id}" for r in recs]


def _n_failed(recs: Sequence[Record]) -> int:
    return sum(1 for r in recs if r.parsed is None or r.error is not None)


def _no_records(name: str) -> DataError:
    return DataError(
        f"metric '{name}': no scorable records (every answer is hidden or the record list is empty); "
        "score a split with answers, or report predictions only"
    )


def mean_metric(name: str, records: Sequence[Record], score_key: str, stats: StatsOptions) -> MetricResult:
    """Micro mean of ``r.scores[score_key]`` over scorable records with a cluster-bootstrap CI.

    n = #scorable records, n_clusters = #distinct clusters among them, n_failed = #of them whose
    ``parsed`` is None or whose ``error`` is set. A scorable record missing ``score_key`` raises
    DataError naming the sample id; no scorable record at all also raises DataError.
    """
    _check_stats(stats)
    recs = scorable(records)
    if not recs:
        raise _no_records(name)
    values = _scores(recs, score_key)
    clusters = _clusters(recs)
    low = high = None
    if stats.n_boot > 0:
        low, high = cluster_bootstrap(values, clusters, n_boot=stats.n_boot, seed=stats.seed, alpha=stats.alpha)
    return MetricResult(
        name=name,
        value=float(values.mean()),
        ci_low=low,
        ci_high=high,
        n=len(recs),
        n_clusters=len(set(clusters)),
        n_failed=_n_failed(recs),
        ci_method=ci_method(stats),
    )


def _group_of(r: Record, group_key: str) -> str:
    if group_key not in r.groups:
        have = ", ".join(sorted(r.groups)) or "none"
        raise DataError(
            f"record '{r.sample_id}' (task '{r.task}') has no group '{group_key}' (groups: {have}); "
            f"the task loader must set groups['{group_key}'] on every sample"
        )
    return str(r.groups[group_key])


def _split(recs: Sequence[Record], group_key: str) -> dict[str, list[Record]]:
    by: dict[str, list[Record]] = {}
    for r in recs:
        by.setdefault(_group_of(r, group_key), []).append(r)
    return by


def group_metrics(
    records: Sequence[Record],
    score_key: str,
    group_key: str,
    stats: StatsOptions,
    *,
    names: Mapping[str, str] | None = None,
    order: Sequence[str] | None = None,
) -> tuple[MetricResult, ...]:
    """One :func:`mean_metric` per value of ``r.groups[group_key]`` (scorable records only).

    ``MetricResult.name = names.get(value, value)``. With ``order``, groups come in that order
    (values of ``order`` with no records are skipped) followed by any other values sorted;
    otherwise all values sorted. A scorable record without ``group_key`` raises DataError.
    """
    by = _split(scorable(records), group_key)
    names = names or {}
    head = [v for v in (order or ()) if v in by]
    tail = sorted(v for v in by if v not in set(head))
    return tuple(mean_metric(names.get(v, v), by[v], score_key, stats) for v in head + tail)


def macro_metric(
    name: str,
    records: Sequence[Record],
    score_key: str,
    group_key: str,
    stats: StatsOptions,
    *,
    expected_groups: Sequence[str] | None = None,
) -> MetricResult:
    """Plain mean over groups of the per-group means of ``r.scores[score_key]`` (macro average).

    The bootstrap resamples clusters and recomputes the macro mean on each resample; a group absent
    from a resample is left out of that resample's mean. With ``expected_groups``, every expected
    group must have scorable records and no other group may appear (DataError otherwise), so the
    macro average is always over the benchmark's official group set.
    n, n_clusters and n_failed count all scorable records.
    """
    _check_stats(stats)
    recs = scorable(records)
    if not recs:
        raise _no_records(name)
    values = _scores(recs, score_key)
    labels = [_group_of(r, group_key) for r in recs]
    present = sorted(set(labels))
    if expected_groups is not None:
        missing = [g for g in expected_groups if g not in present]
        extra = [g for g in present if g not in set(expected_groups)]
        if missing or extra:
            raise DataError(
                f"macro metric '{name}' over '{group_key}': "
                + (f"no scorable records for expected groups {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected groups {extra}" if extra else "")
                + f"; expected exactly {list(expected_groups)}. Run the full split, or fix the task's groups"
            )
    codes = _codes(labels, present)
    n_groups = len(present)

    def macro(idx: np.ndarray) -> float:
        sums = np.bincount(codes[idx], weights=values[idx], minlength=n_groups)
        counts = np.bincount(codes[idx], minlength=n_groups)
        seen = counts > 0
        return float(np.mean(sums[seen] / counts[seen]))

    clusters = _clusters(recs)
    value = macro(np.arange(len(recs)))
    low = high = None
    if stats.n_boot > 0:
        low, high = cluster_bootstrap_fn(
            len(recs), clusters, macro, n_boot=stats.n_boot, seed=stats.seed, alpha=stats.alpha
        )
    return MetricResult(
        name=name,
        value=value,
        ci_low=low,
        ci_high=high,
        n=len(recs),
        n_clusters=len(set(clusters)),
        n_failed=_n_failed(recs),
        ci_method=ci_method(stats),
    )


def _codes(labels: Sequence[str], present: Sequence[str]) -> np.ndarray:
    pos = {g: i for i, g in enumerate(present)}
    return np.array([pos[g] for g in labels], dtype=np.int64)


def simple_aggregate(
    primary: str,
    score_keys: Sequence[str],
    group_keys: Sequence[str] = (),
    group_names: Mapping[str, Mapping[str, str]] | None = None,
) -> Callable[[Sequence[Record], StatsOptions], Aggregation]:
    """An AggregateFn: :func:`mean_metric` per score key (named by the key, overall rows) and
    :func:`group_metrics` of ``primary`` per group key (``by_group[group_key]``, display names from
    ``group_names[group_key]``). ``primary`` must be one of ``score_keys``.

    With no scorable record at all (a hidden-answer split) it returns no metrics and a note
    instead of raising.
    """
    keys = tuple(score_keys)
    if primary not in keys:
        raise ConfigError(f"simple_aggregate: primary metric '{primary}' is not among score_keys {list(keys)}")
    gkeys = tuple(group_keys)
    gnames = dict(group_names or {})
    unknown = sorted(set(gnames) - set(gkeys))
    if unknown:
        raise ConfigError(f"simple_aggregate: group_names given for unknown group keys {unknown}; known: {list(gkeys)}")

    def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
        if not scorable(records):
            return Aggregation(
                metrics=(),
                by_group={},
                notes=(f"no scorable records among {len(records)} (answers hidden): metrics not computed",),
            )
        metrics = tuple(mean_metric(k, records, k, stats) for k in keys)
        by_group = {g: group_metrics(records, primary, g, stats, names=gnames.get(g)) for g in gkeys}
        return Aggregation(metrics=metrics, by_group=by_group)

    return aggregate
