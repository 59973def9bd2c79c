"""VideoMMMU knowledge gain (Δknowledge) from two runs over the Adaptation questions.

``EvolvingLMMs-Lab/VideoMMMU:README.md``::

    Δknowledge = (Acc_adaptation − Acc_question_only) / (100% − Acc_question_only) × 100%

``Acc_adaptation``: the Adaptation track with the lecture video (task ``videommmu``, records of
track "Adaptation"); ``Acc_question_only``: the same questions with only the question image (task
``videommmu_adaptation_qonly``). Here both are on the 0-1 scale, so the returned value is the
fraction (×100 gives the README's percentage; it may be negative).

``experiment_on_delta/check_wrong2right.py`` also defines, with ``C_*`` the sets of correctly
answered ids and N the number of questions (300 in the official script)::

    wrong2right = |C_adapt \\ C_qonly| / (N − |C_qonly|)      right2wrong = |C_qonly \\ C_adapt| / |C_qonly|
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vpbench.errors import DataError, MetricUnavailable
from vpbench.metrics.aggregate import ci_method
from vpbench.metrics.stats import cluster_bootstrap_fn
from vpbench.task import StatsOptions
from vpbench.types import MetricResult, Record

__all__ = ["delta_knowledge", "knowledge_transitions", "paired_adaptation"]


def _by_id(records: Sequence[Record], what: str, adaptation_only: bool) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for r in records:
        if r.answer is None or (adaptation_only and r.groups.get("track") != "Adaptation"):
            continue
        if "score" not in r.scores:
            raise DataError(f"{what}: record '{r.sample_id}' has no scores['score']; re-score the run")
        if r.sample_id in out:
            raise DataError(f"{what}: record '{r.sample_id}' appears twice")
        out[r.sample_id] = r
    return out


def paired_adaptation(
    records_with_video: Sequence[Record], records_question_only: Sequence[Record]
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Align the two runs by sample id (``Adaptation/<official id>`` in both tasks).

    Returns (ids [N], video scores [N], question-only scores [N], clusters [N]). The video run's
    non-Adaptation records are ignored. Both runs must cover the same questions (DataError
    listing the differences otherwise).
    """
    video = _by_id(records_with_video, "records_with_video", adaptation_only=True)
    qonly = _by_id(records_question_only, "records_question_only", adaptation_only=False)
    if not video or not qonly:
        raise DataError("Δknowledge needs Adaptation records with answers in both runs "
                        f"(got {len(video)} with video, {len(qonly)} question-only)")
    only_v, only_q = sorted(set(video) - set(qonly)), sorted(set(qonly) - set(video))
    if only_v or only_q:
        raise DataError(
            "Δknowledge: the two runs cover different questions "
            f"(only with video: {only_v[:5]}{'...' if len(only_v) > 5 else ''}; "
            f"only question-only: {only_q[:5]}{'...' if len(only_q) > 5 else ''}); "
            "run videommmu and videommmu_adaptation_qonly on the same data root and sample set"
        )
    ids = sorted(video)
    a = np.array([float(video[i].scores["score"]) for i in ids])
    q = np.array([float(qonly[i].scores["score"]) for i in ids])
    clusters = [video[i].cluster or i for i in ids]
    return ids, a, q, clusters


def _delta(a: float, q: float) -> float:
    return (a - q) / (1.0 - q)


def delta_knowledge(
    records_with_video: Sequence[Record],
    records_question_only: Sequence[Record],
    stats: StatsOptions | None = None,
) -> MetricResult:
    """Δknowledge = (acc_video − acc_qonly) / (1 − acc_qonly) on the paired Adaptation questions.

    The CI resamples videos (clusters) jointly for both runs; when some resample has a perfect
    question-only accuracy (Δ undefined) the CI is omitted. Raises MetricUnavailable when the
    question-only accuracy is 1 (Δ undefined), DataError when the runs do not pair up.
    """
    stats = stats or StatsOptions()
    ids, a, q, clusters = paired_adaptation(records_with_video, records_question_only)
    acc_a, acc_q = float(a.mean()), float(q.mean())
    if acc_q >= 1.0:
        raise MetricUnavailable("Δknowledge is undefined: the question-only run answers every question correctly")
    low = high = None
    method = "none"
    if stats.n_boot > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            try:
                low, high = cluster_bootstrap_fn(
                    len(ids), clusters, lambda idx: _delta(float(a[idx].mean()), float(q[idx].mean())),
                    n_boot=stats.n_boot, seed=stats.seed, alpha=stats.alpha,
                )
                method = ci_method(stats)
            except ValueError:
                low = high = None
    failed = {r.sample_id for r in [*records_with_video, *records_question_only] if r.parsed is None or r.error}
    return MetricResult(
        name="Δknowledge", value=_delta(acc_a, acc_q), ci_low=low, ci_high=high, n=len(ids),
        n_clusters=len(set(clusters)), n_failed=len(failed & set(ids)), ci_method=method,
    )


def knowledge_transitions(
    records_with_video: Sequence[Record], records_question_only: Sequence[Record]
) -> dict[str, float]:
    """wrong2right / right2wrong rates (0-1) and the counts they come from (official definitions)."""
    ids, a, q, _ = paired_adaptation(records_with_video, records_question_only)
    ca = {i for i, s in zip(ids, a) if s == 1.0}
    cq = {i for i, s in zip(ids, q) if s == 1.0}
    n = len(ids)
    return {
        "wrong2right": len(ca - cq) / (n - len(cq)) if n > len(cq) else float("nan"),
        "right2wrong": len(cq - ca) / len(cq) if cq else float("nan"),
        "n": float(n),
        "n_correct_video": float(len(ca)),
        "n_correct_question_only": float(len(cq)),
    }
