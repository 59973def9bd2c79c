"""Paired comparison of two aligned runs, metric by metric.

Metric names (``compare`` reports a default set, a policy names its own):

- ``acc``: micro mean of the per-sample score ``acc`` over the aligned scorable samples;
- ``acc[question_type=CM]``: the same over the samples of one group value;
- ``acc[macro:category]``: plain mean over the values of ``category`` of the per-group means;
- ``failure_rate``: share of samples whose request failed or whose answer did not parse (lower is better);
- ``perception_gap``: score(full) − score(key-absent) of the task's primary score, over samples scored
  in both passes on both sides (a candidate that loses gap loses use of the transient frames).

For every metric: both values, Δ = candidate − baseline, the paired cluster-bootstrap percentile CI
of Δ (both runs recomputed on the same resample of videos, :mod:`vpbench.metrics.stats`), the
minimum detectable effect at this n (two-sided ``1 - ci_level``, power 0.8), and for 0/1 scores
McNemar's discordant counts with the exact two-sided p. Overall score rows list the samples that
flipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from vpbench.errors import ConfigError, DataError
from vpbench.gate.align import Aligned, align, align_gap, differences
from vpbench.gate.sides import TaskSide
from vpbench.metrics.stats import (cluster_bootstrap_fn, mcnemar_exact, minimum_detectable_effect,
                                   paired_cluster_bootstrap)

_NAME = re.compile(r"^(?P<score>[\w.\-]+)(?:\[(?:macro:(?P<macro>[^\]=]+)|(?P<gkey>[^\]=]+)=(?P<gval>[^\]]+))\])?$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name. ``kind``: mean | group | macro | failure_rate | perception_gap."""

    name: str
    kind: str
    score: str = ""
    group_key: str = ""
    group_value: str = ""

    @property
    def higher_is_better(self) -> bool:
        return self.kind != "failure_rate"


def parse_metric(name: str, primary_score: str) -> MetricSpec:
    if name == "failure_rate":
        return MetricSpec(name, "failure_rate")
    if name == "perception_gap":
        return MetricSpec(name, "perception_gap", score=primary_score)
    m = _NAME.match(name)
    if not m:
        raise ConfigError(f"metric '{name}' is not understood; write SCORE (e.g. acc), SCORE[GROUP=VALUE], "
                          f"SCORE[macro:GROUP], failure_rate or perception_gap")
    if m["macro"]:
        return MetricSpec(name, "macro", m["score"], group_key=m["macro"].strip())
    if m["gkey"]:
        return MetricSpec(name, "group", m["score"], m["gkey"].strip(), m["gval"].strip())
    return MetricSpec(name, "mean", m["score"])


@dataclass(frozen=True)
class StatsSettings:
    n_boot: int = 2000
    seed: int = 0
    ci_level: float = 0.95
    power: float = 0.8

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ConfigError(f"n_boot must be >= 1 (a gate needs a CI), got {self.n_boot}")
        if not 0.5 <= self.ci_level < 1.0:
            raise ConfigError(f"ci_level must be in [0.5, 1), got {self.ci_level}")

    @property
    def alpha(self) -> float:
        return 1.0 - self.ci_level


@dataclass(frozen=True)
class McNemar:
    """``b``: right under the baseline and wrong under the candidate; ``c``: the reverse."""

    b: int
    c: int
    p: float


@dataclass(frozen=True)
class Flip:
    sample_id: str
    baseline_score: float
    candidate_score: float
    baseline_parsed: str | None
    candidate_parsed: str | None
    baseline_response: str | None
    candidate_response: str | None


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one task; values on the 0-1 scale (tables show points ×100)."""

    task: str
    metric: str
    kind: str
    higher_is_better: bool
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    ci_level: float
    n: int
    n_clusters: int
    mde: float | None
    mcnemar: McNemar | None = None
    flips: tuple[Flip, ...] = ()


@dataclass(frozen=True)
class TaskComparison:
    task: str
    differences: dict[str, str]
    """Everything that differs ({allowable name: reason}), accepted or not."""
    refused: tuple[str, ...]
    """Reasons the runs are not comparable here (differences not allowed, answer mismatches)."""
    n: int
    n_baseline: int
    coverage: float
    metrics: tuple[MetricComparison, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        return not self.refused


def _macro(values: np.ndarray, codes: np.ndarray, n_groups: int) -> Callable[[np.ndarray], float]:
    def fn(idx: np.ndarray) -> float:
        sums = np.bincount(codes[idx], weights=values[idx], minlength=n_groups)
        counts = np.bincount(codes[idx], minlength=n_groups)
        seen = counts > 0
        return float(np.mean(sums[seen] / counts[seen]))
    return fn


def paired_stats(spec_name: str, a: np.ndarray, b: np.ndarray, clusters: list[str], st: StatsSettings,
                 ) -> tuple[float, float, float, float | None]:
    """(Δ, CI low, CI high, MDE) of mean(b) − mean(a) [N] under the paired cluster bootstrap."""
    if a.shape[0] == 0:
        raise DataError(f"metric '{spec_name}': no aligned scorable sample to compare")
    delta, lo, hi = paired_cluster_bootstrap(a, b, clusters, n_boot=st.n_boot, seed=st.seed, alpha=st.alpha)
    mde = minimum_detectable_effect(a, b, clusters, alpha=st.alpha, power=st.power) \
        if len(set(clusters)) >= 2 else None
    return delta, lo, hi, mde


def _mcnemar(a: np.ndarray, b: np.ndarray) -> McNemar | None:
    if not (np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
        return None
    nb = int(np.sum((a == 1) & (b == 0)))
    nc = int(np.sum((a == 0) & (b == 1)))
    return McNemar(nb, nc, mcnemar_exact(nb, nc))


def _flips(al: Aligned, a: np.ndarray, b: np.ndarray) -> tuple[Flip, ...]:
    idx = np.flatnonzero(a != b)
    idx = idx[np.argsort(b[idx] - a[idx], kind="stable")]  # losses first
    return tuple(Flip(al.base[i].sample_id, float(a[i]), float(b[i]), al.base[i].parsed, al.cand[i].parsed,
                      al.base[i].response, al.cand[i].response) for i in idx)


def _scores(al: Aligned, key: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return al.scores(key)
    except KeyError as e:
        raise ConfigError(f"task '{al.task}', metric '{name}': {e.args[0]}") from e


def compare_metric(spec: MetricSpec, al: Aligned, st: StatsSettings,
                   gap: tuple[Aligned, Aligned] | None = None) -> MetricComparison:
    clusters = list(al.clusters)
    mcn, flips = None, ()
    if spec.kind == "perception_gap":
        if gap is None:
            raise ConfigError(f"task '{al.task}': metric 'perception_gap' needs both sides run with "
                              f"--perception-gap (records.key_absent.jsonl)")
        full, absent = gap
        fa, fb = _scores(full, spec.score, spec.name)
        ka, kb = _scores(absent, spec.score, spec.name)
        a, b, clusters = fa - ka, fb - kb, list(full.clusters)
    elif spec.kind == "failure_rate":
        a = np.array([float(r.failed) for r in al.base])
        b = np.array([float(r.failed) for r in al.cand])
        mcn = _mcnemar(1.0 - a, 1.0 - b)
    else:
        a, b = _scores(al, spec.score, spec.name)
        if spec.kind == "group":
            have = {r.groups.get(spec.group_key) for r in al.base} - {None}
            if spec.group_value not in have:
                raise ConfigError(f"task '{al.task}', metric '{spec.name}': no aligned sample has "
                                  f"{spec.group_key}={spec.group_value!r} (values: {', '.join(sorted(have)) or 'none'})")
            keep = np.array([r.groups.get(spec.group_key) == spec.group_value for r in al.base])
            a, b, clusters = a[keep], b[keep], [c for c, k in zip(clusters, keep) if k]
        mcn = _mcnemar(a, b)
        if spec.kind == "mean":
            flips = _flips(al, a, b)
    if spec.kind == "macro":
        return _compare_macro(spec, al, a, b, st, mcn)
    delta, lo, hi, mde = paired_stats(spec.name, a, b, clusters, st)
    return MetricComparison(al.task, spec.name, spec.kind, spec.higher_is_better, float(a.mean()), float(b.mean()),
                            delta, lo, hi, st.ci_level, int(a.shape[0]), len(set(clusters)), mde, mcn, flips)


def _compare_macro(spec: MetricSpec, al: Aligned, a: np.ndarray, b: np.ndarray, st: StatsSettings,
                   mcn: McNemar | None) -> MetricComparison:
    """Macro mean over groups; the CI recomputes both macro means on each video resample, the MDE
    linearises the macro mean as a weighted micro mean (weights 1 / (G · n_group))."""
    labels = []
    for r in al.base:
        if spec.group_key not in r.groups:
            raise ConfigError(f"task '{al.task}', metric '{spec.name}': sample '{r.sample_id}' has no group "
                              f"'{spec.group_key}' (groups: {', '.join(sorted(r.groups)) or 'none'})")
        labels.append(r.groups[spec.group_key])
    present = sorted(set(labels))
    codes = np.array([present.index(g) for g in labels], dtype=np.int64)
    fa, fb = _macro(a, codes, len(present)), _macro(b, codes, len(present))
    every = np.arange(a.shape[0])
    delta = fb(every) - fa(every)
    lo, hi = cluster_bootstrap_fn(a.shape[0], list(al.clusters), lambda idx: fb(idx) - fa(idx),
                                  n_boot=st.n_boot, seed=st.seed, alpha=st.alpha)
    weights = a.shape[0] / (len(present) * np.bincount(codes)[codes])
    mde = minimum_detectable_effect(a * weights, b * weights, list(al.clusters), alpha=st.alpha, power=st.power) \
        if len(set(al.clusters)) >= 2 else None
    return MetricComparison(al.task, spec.name, spec.kind, True, fa(every), fb(every), float(delta), lo, hi,
                            st.ci_level, int(a.shape[0]), len(set(al.clusters)), mde, mcn)


def default_metrics(al: Aligned, primary_score: str, has_gap: bool) -> list[str]:
    """Every score all aligned samples carry (primary first), the primary score per group value and
    macro-averaged over each group key with several values, the failure rate and, when both sides
    ran it, the perception gap."""
    if not al.n:
        return []
    common = set(al.base[0].scores)
    for r in al.base + al.cand:
        common &= set(r.scores)
    keys = sorted(common, key=lambda k: (k != primary_score, k))
    names = list(keys)
    if primary_score in common:
        for gkey in sorted({k for r in al.base for k in r.groups}):
            values = sorted({r.groups[gkey] for r in al.base if gkey in r.groups})
            names += [f"{primary_score}[{gkey}={v}]" for v in values]
            if len(values) > 1 and all(gkey in r.groups for r in al.base):
                names.append(f"{primary_score}[macro:{gkey}]")
    names.append("failure_rate")
    if has_gap:
        names.append("perception_gap")
    return names


def compare_task(base: TaskSide, cand: TaskSide, *, primary_score: str, st: StatsSettings,
                 allow: tuple[str, ...] = (), metrics: list[str] | None = None,
                 run_differences: Mapping[str, str] | None = None) -> TaskComparison:
    """Check comparability, align, and compare ``metrics`` (default: :func:`default_metrics`).
    Refused comparisons carry their reasons and no metric rows."""
    diffs = {**differences(base, cand), **(run_differences or {})}
    refused = [reason for name, reason in diffs.items() if name not in allow]
    al = align(base, cand)
    if al.answer_mismatch:
        refused.append(f"{len(al.answer_mismatch)} samples have different reference answers "
                       f"(e.g. {al.answer_mismatch[0]}): the annotation files differ")
    if not al.n and not refused:
        refused.append("no scorable sample is present in both runs")
    common = dict(task=base.name, differences=diffs, n=al.n, n_baseline=al.n_baseline, coverage=al.coverage)
    if refused:
        return TaskComparison(refused=tuple(refused), **common)
    gap = align_gap(base, cand)
    names = metrics if metrics is not None else default_metrics(al, primary_score, gap is not None)
    if "perception_gap" in names and gap is None:
        lacking = " and ".join(s for s, t in (("baseline", base), ("candidate", cand)) if not t.key_absent)
        return TaskComparison(refused=(f"perception_gap is gated but the {lacking} ran without --perception-gap "
                                       f"(no records.key_absent.jsonl)",), **common)
    rows = tuple(compare_metric(parse_metric(n, primary_score), al, st, gap) for n in names)
    notes = []
    if gap is None and (base.key_absent or cand.key_absent):
        notes.append("only one side ran --perception-gap: the gap is not compared")
    return TaskComparison(refused=(), metrics=rows, notes=tuple(notes), **common)
