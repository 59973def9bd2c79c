"""Verdicts of the regression gate and their exit codes.

With Δ = candidate − baseline, [lo, hi] its paired CI at the policy's two-sided level (1 − α) and
m the metric's margin (points / 100):

- PASS: lo > −m (non-inferior: the candidate loses less than the margin);
- REGRESSION: hi < −m (it loses more than the margin), or a significant failure-rate rise;
- INCONCLUSIVE: neither, or fewer aligned samples than ``min_n``; the verdict names the n that
  would decide it if Δ and the per-sample spread stayed as observed (CI half-width ∝ 1/√n);
- INVALID: the runs are not comparable (protocol, parser, sample set, task version, answers) or
  cover less of the baseline than ``min_coverage``.

Each one-sided call errs with probability ≈ α/2 at the boundary Δ = −m.
The overall verdict is the worst over metrics: INVALID > REGRESSION > INCONCLUSIVE > PASS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from vpbench.gate.compare import MetricComparison


class Verdict(str, Enum):
    PASS = "PASS"
    REGRESSION = "REGRESSION"
    INCONCLUSIVE = "INCONCLUSIVE"
    INVALID = "INVALID"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES = {Verdict.PASS: 0, Verdict.REGRESSION: 10, Verdict.INCONCLUSIVE: 11, Verdict.INVALID: 12}
"""Process exit codes of ``vpbench regress`` (``compare`` exits 12 when it refuses). 2 stays a usage
or input error (bad flag, policy or file), as for every vpbench command."""

SEVERITY = (Verdict.INVALID, Verdict.REGRESSION, Verdict.INCONCLUSIVE, Verdict.PASS)


@dataclass(frozen=True)
class MetricVerdict:
    task: str
    metric: str
    verdict: Verdict
    reason: str
    margin: float
    """Points (0-100)."""
    n_needed: int | None = None
    comparison: MetricComparison | None = None


def worst(verdicts) -> Verdict:
    have = set(verdicts)
    for v in SEVERITY:
        if v in have:
            return v
    return Verdict.PASS


def n_to_decide(delta: float, lo: float, hi: float, n: int, bound: float) -> int | None:
    """Aligned samples that would put the CI clear of ``bound`` if Δ and the spread stayed put.

    The relevant half-width h (Δ − lo when Δ > bound, hi − Δ when Δ < bound) shrinks as 1/√n, so
    n' = n · (h / |Δ − bound|)², rounded up. None when Δ sits on the bound (no n decides it)."""
    gap = abs(delta - bound)
    if gap < 1e-12:
        return None
    h = (delta - lo) if delta > bound else (hi - delta)
    return max(n + 1, math.ceil(n * (h / gap) ** 2 - 1e-9))


def decide_metric(c: MetricComparison, margin: float, min_n: int) -> MetricVerdict:
    """Non-inferiority verdict of a higher-is-better metric with margin ``margin`` points."""
    m = margin / 100.0
    bound = -m
    pts = f"Δ {c.delta * 100:+.2f} pts, {c.ci_level * 100:g}% CI [{c.ci_low * 100:+.2f}, {c.ci_high * 100:+.2f}]"
    need = n_to_decide(c.delta, c.ci_low, c.ci_high, c.n, bound)
    if c.n < min_n:
        need_n = max(min_n, need or min_n)
        return MetricVerdict(c.task, c.metric, Verdict.INCONCLUSIVE,
                             f"{pts}; n={c.n} is below the policy's min_n={min_n}", margin, need_n, c)
    if c.ci_low > bound:
        return MetricVerdict(c.task, c.metric, Verdict.PASS, f"{pts} > −{margin:g} (non-inferior)", margin, None, c)
    if c.ci_high < bound:
        return MetricVerdict(c.task, c.metric, Verdict.REGRESSION,
                             f"{pts} < −{margin:g}: the candidate loses more than the margin", margin, None, c)
    why = f"{pts} straddles −{margin:g}"
    why += (f"; about n={need} aligned samples would decide it at this Δ" if need
            else "; Δ sits on the margin: no sample size decides it")
    return MetricVerdict(c.task, c.metric, Verdict.INCONCLUSIVE, why, margin, need, c)


def decide_failure(c: MetricComparison, max_increase: float) -> MetricVerdict:
    """The failure-rate guard: REGRESSION when the CI lower bound of the rise exceeds the tolerance,
    else PASS (it can fail the gate, never hold it inconclusive)."""
    pts = (f"failed/unparsed {c.baseline * 100:.2f}% → {c.candidate * 100:.2f}%, {c.ci_level * 100:g}% CI of the rise "
           f"[{c.ci_low * 100:+.2f}, {c.ci_high * 100:+.2f}] pts")
    if c.ci_low > max_increase / 100.0:
        return MetricVerdict(c.task, c.metric, Verdict.REGRESSION, f"{pts} > +{max_increase:g}", max_increase,
                             None, c)
    return MetricVerdict(c.task, c.metric, Verdict.PASS, f"{pts}: no significant rise", max_increase, None, c)
