"""A regression policy (YAML, strict keys): which metrics gate a checkpoint and by how much.

Example (``reports/policies/ci.yaml``)::

    ci_level: 0.95          # two-sided level of the paired CI of Δ (each one-sided call errs ≤ 2.5%)
    min_n: 100              # fewer aligned samples than this: INCONCLUSIVE, never PASS or REGRESSION
    min_coverage: 1.0       # aligned share of the baseline's scorable samples below this: INVALID
    n_boot: 2000
    seed: 0
    failure_rate: {counts: true, max_increase: 0.0}   # a significant rise of failed/unparsed answers
    allow_differ: []        # e.g. [parser] to accept a different parser tag
    multiplicity: none      # or bonferroni: split 1 − ci_level over every call that can fail the gate
    tasks:
      motionbench:
        metrics:
          acc: {margin: 1.0}                  # non-inferiority margin, absolute points (0-100)
          acc[question_type=CM]: {margin: 5.0}
          perception_gap: {margin: 2.0}

Margins are absolute points on the 0-100 scale (1.0 = one percentage point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vpbench.config import check_keys, coerce, load_yaml, suggest
from vpbench.errors import ConfigError
from vpbench.gate.align import ALLOWABLE, check_allow
from vpbench.gate.compare import StatsSettings, parse_metric


@dataclass(frozen=True)
class MetricRule:
    margin: float
    """Non-inferiority margin in absolute points (0-100 scale)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin <= 100.0:
            raise ConfigError(f"margin must be in [0, 100] points, got {self.margin}")


@dataclass(frozen=True)
class FailureRule:
    counts: bool = True
    """Whether a significant rise of the failed/unparsed rate is a REGRESSION."""
    max_increase: float = 0.0
    """Tolerated rise in points: REGRESSION when the CI's lower bound of the rise exceeds it."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_increase <= 100.0:
            raise ConfigError(f"failure_rate.max_increase must be in [0, 100] points, got {self.max_increase}")


@dataclass(frozen=True)
class Policy:
    tasks: Mapping[str, Mapping[str, MetricRule]]
    ci_level: float = 0.95
    min_n: int = 100
    min_coverage: float = 1.0
    n_boot: int = 2000
    seed: int = 0
    failure_rate: FailureRule = FailureRule()
    allow_differ: tuple[str, ...] = ()
    multiplicity: str = "none"
    """"none": every metric's CI at ``ci_level``; "bonferroni": at 1 − (1 − ci_level) / k over the k
    calls that can fail the gate (gated metrics plus failure-rate guards), so the chance of any
    false REGRESSION stays ≤ (1 − ci_level) / 2 however many metrics are gated."""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError(f"{self.source or 'policy'}: 'tasks' names no task to gate")
        if self.min_n < 1:
            raise ConfigError(f"min_n must be >= 1, got {self.min_n}")
        if not 0.0 < self.min_coverage <= 1.0:
            raise ConfigError(f"min_coverage must be in (0, 1], got {self.min_coverage}")
        if self.n_boot < 200:
            raise ConfigError(f"n_boot must be >= 200 for a stable CI bound, got {self.n_boot}")
        check_allow(self.allow_differ)
        if self.multiplicity not in ("none", "bonferroni"):
            raise ConfigError(f"multiplicity must be 'none' or 'bonferroni', got {self.multiplicity!r}"
                              f"{suggest(self.multiplicity, ('none', 'bonferroni'))}")
        self.stats()  # validates ci_level

    @property
    def n_calls(self) -> int:
        """Verdict calls that can return REGRESSION: gated metrics plus one failure guard per task."""
        return sum(len(rules) + int(self.failure_rate.counts) for rules in self.tasks.values())

    def per_metric_level(self) -> float:
        if self.multiplicity == "bonferroni":
            return 1.0 - (1.0 - self.ci_level) / self.n_calls
        return self.ci_level

    def stats(self) -> StatsSettings:
        return StatsSettings(n_boot=self.n_boot, seed=self.seed, ci_level=self.per_metric_level())


TOP_KEYS = ("tasks", "ci_level", "min_n", "min_coverage", "n_boot", "seed", "failure_rate", "allow_differ",
            "multiplicity")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    return value


def _tasks(raw: Any, where: str) -> dict[str, dict[str, MetricRule]]:
    from vpbench.registry import task_names

    known = task_names()
    out: dict[str, dict[str, MetricRule]] = {}
    for task, body in _mapping(raw, f"{where}: tasks").items():
        if task not in known:
            raise ConfigError(f"{where}: unknown task '{task}'{suggest(task, known)}; tasks: {', '.join(known)}")
        body = _mapping(body, f"{where}: tasks.{task}")
        check_keys(body, ("metrics",), f"{where}: tasks.{task}")
        metrics = _mapping(body.get("metrics"), f"{where}: tasks.{task}.metrics")
        if not metrics:
            raise ConfigError(f"{where}: tasks.{task}.metrics names no metric")
        rules = {}
        for name, rule in metrics.items():
            here = f"{where}: tasks.{task}.metrics.{name}"
            parse_metric(str(name), "acc")  # syntax only; names are checked against the runs
            if name == "failure_rate":
                raise ConfigError(f"{here}: the failure rate is gated by the top-level 'failure_rate' key")
            if isinstance(rule, (int, float)) and not isinstance(rule, bool):
                raise ConfigError(f"{here}: write the margin as a mapping: {name}: {{margin: {rule}}}")
            rule = _mapping(rule, here)
            check_keys(rule, ("margin",), here)
            if "margin" not in rule:
                raise ConfigError(f"{here}: needs a 'margin' (absolute points, e.g. margin: 1.0)")
            try:
                rules[str(name)] = MetricRule(margin=coerce(rule["margin"], float, f"{here}.margin"))
            except ConfigError as e:
                raise ConfigError(f"{here}: {e}") from e
        out[str(task)] = rules
    return out


def policy_from_mapping(data: Mapping[str, Any], where: str = "policy") -> Policy:
    check_keys(data, TOP_KEYS, where)
    if "tasks" not in data:
        raise ConfigError(f"{where}: needs 'tasks' (task → metrics → margin)")
    kw: dict[str, Any] = {"tasks": _tasks(data["tasks"], where), "source": where}
    for key, tp in (("ci_level", float), ("min_n", int), ("min_coverage", float), ("n_boot", int), ("seed", int),
                    ("multiplicity", str)):
        if key in data:
            kw[key] = coerce(data[key], tp, key)
    if "failure_rate" in data:
        fr = _mapping(data["failure_rate"], f"{where}: failure_rate")
        check_keys(fr, ("counts", "max_increase"), f"{where}: failure_rate")
        kw["failure_rate"] = FailureRule(**{k: coerce(v, bool if k == "counts" else float, k) for k, v in fr.items()})
    if "allow_differ" in data:
        kw["allow_differ"] = coerce(data["allow_differ"] or (), tuple[str, ...], "allow_differ")
    try:
        return Policy(**kw)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e


def load_policy(path: Path) -> Policy:
    return policy_from_mapping(load_yaml(Path(path)), str(path))


__all__ = ["ALLOWABLE", "FailureRule", "MetricRule", "Policy", "load_policy", "policy_from_mapping"]
