"""VSI-Bench scoring: mean relative accuracy (MRA) and the official macro aggregation.

Reference: ``vision-x-nyu/thinking-in-space@51e089c:lmms_eval/tasks/vsibench/utils.py`` (identical
in lmms-eval ``_compute_all_subscores``).

* MRA: ``C = np.linspace(.5, .95, int((.95 - .5) / .05 + 2))`` — the float expression is
  10.999999999999998, so ``int`` gives 10 thresholds {0.50, 0.55, ..., 0.95} — and
  ``MRA = mean_θ 1[|pred - target| / target <= 1 - θ]``. The code uses ``<=`` (the paper writes
  ``<``); ``strict=True`` gives the paper's version. The comparison is done exactly as the
  official code does it (numpy float64), so boundary cases agree bit for bit.
* Aggregation: mean score per ``question_type``; relative direction = unweighted mean of its
  easy / medium / hard subtype means; overall = unweighted mean of the task scores (8 when every
  type is present). Every value is on the 0-1 scale.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

MCA_TYPES: tuple[str, ...] = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
NA_TYPES: tuple[str, ...] = (
    "object_abs_distance",
    "object_counting",
    "object_size_estimation",
    "room_size_estimation",
)
REL_DIRECTION_SUBTYPES: tuple[str, ...] = MCA_TYPES[:3]
REL_DIRECTION = "object_rel_direction"

TASKS: tuple[str, ...] = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    "object_rel_direction",
    "route_planning",
    "obj_appearance_order",
)
"""The 8 task scores in the paper's / official ``tabulated_keys`` order."""

TASK_COLUMNS: Mapping[str, str] = {
    "object_counting": "Obj. Count",
    "object_abs_distance": "Abs. Dist.",
    "object_size_estimation": "Obj. Size",
    "room_size_estimation": "Room Size",
    "object_rel_distance": "Rel. Dist.",
    "object_rel_direction": "Rel. Dir.",
    "route_planning": "Route Plan",
    "obj_appearance_order": "Appr. Order",
}
"""Paper column names of the 8 tasks."""


def task_of(question_type: str) -> str:
    """The task (one of ``TASKS``) a question type counts towards (rel-direction subtypes merge)."""
    if question_type in REL_DIRECTION_SUBTYPES:
        return REL_DIRECTION
    if question_type in MCA_TYPES or question_type in NA_TYPES:
        return question_type
    raise ValueError(f"unknown VSI-Bench question_type {question_type!r}")


def mra_thresholds(start: float = 0.5, end: float = 0.95, interval: float = 0.05) -> np.ndarray:
    """Confidence thresholds [10] exactly as the official code builds them."""
    num_pts = (end - start) / interval + 2
    return np.linspace(start, end, int(num_pts))


def mean_relative_accuracy(
    pred: float, target: float, start: float = 0.5, end: float = 0.95, interval: float = 0.05, *, strict: bool = False
) -> float:
    """Official MRA of one numeric answer (0-1). ``target`` must be non-zero (ground truths are > 0).

    ``strict=False`` is the official ``<=``; ``strict=True`` the paper's ``<``.
    """
    if target == 0:
        raise ValueError("MRA is undefined for a zero target (the relative error divides by it)")
    rel = abs(pred - target) / target
    bounds = 1 - mra_thresholds(start, end, interval)
    hits = rel < bounds if strict else rel <= bounds
    return float(hits.mean())


def subscores_from_type_means(type_means: Mapping[str, float]) -> dict[str, float]:
    """Task scores and ``overall`` from per-question-type mean scores (types with no question absent).

    Returns ``{task: score}`` for each of ``TASKS`` that has at least one question type present,
    plus ``"overall"`` (mean over the present tasks: the official code divides by ``len(output)``).
    Relative direction is the unweighted mean of the subtype means present (the official code
    requires all three; with all three present the two agree).
    """
    for qt in type_means:
        task_of(qt)  # validates the type
    out: dict[str, float] = {}
    for task in TASKS:
        if task == REL_DIRECTION:
            subs = [float(type_means[t]) for t in REL_DIRECTION_SUBTYPES if t in type_means]
            if subs:
                out[task] = sum(subs) / len(subs)
        elif task in type_means:
            out[task] = float(type_means[task])
    if out:
        out["overall"] = sum(out.values()) / len(out)
    return out


def vsi_subscores(scores: Sequence[float], question_types: Sequence[str]) -> dict[str, float]:
    """:func:`subscores_from_type_means` of aligned per-question ``scores`` and ``question_types``."""
    if len(scores) != len(question_types):
        raise ValueError(f"{len(scores)} scores for {len(question_types)} question types")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for s, qt in zip(scores, question_types):
        sums[qt] = sums.get(qt, 0.0) + float(s)
        counts[qt] = counts.get(qt, 0) + 1
    return subscores_from_type_means({qt: sums[qt] / counts[qt] for qt in sums})
