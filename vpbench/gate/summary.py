"""Renderings of comparisons and gate reports: plain-text tables, Markdown (CI logs), JSON."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from vpbench.gate.compare import MetricComparison, TaskComparison
from vpbench.gate.verdict import EXIT_CODES, MetricVerdict

MAX_FLIPS_SHOWN = 10


def _pts(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.2f}" if sign else f"{x * 100:.2f}"


def _mcnemar(c: MetricComparison) -> str:
    if c.mcnemar is None:
        return "-"
    return f"{c.mcnemar.b}/{c.mcnemar.c} p={c.mcnemar.p:.3g}"


def _row(c: MetricComparison) -> list[str]:
    return [c.metric, _pts(c.baseline), _pts(c.candidate), _pts(c.delta, True),
            f"[{_pts(c.ci_low, True)}, {_pts(c.ci_high, True)}]", _pts(c.mde), _mcnemar(c), str(c.n)]


HEADER = ["metric", "baseline", "candidate", "Δ", "CI", "MDE", "McNemar b/c", "n"]


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def _short(text: str | None, width: int = 40) -> str:
    if text is None:
        return "(not kept)"
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _task_head(tc: TaskComparison) -> str:
    head = f"{tc.task}  n={tc.n} of {tc.n_baseline} baseline samples (coverage {tc.coverage:.1%})"
    return head


def comparison_text(tcs: Sequence[TaskComparison]) -> str:
    """Per task: comparability, the metric table (points ×100; CI at its level) and flipped samples."""
    out: list[str] = []
    for tc in tcs:
        out.append(_task_head(tc))
        for name, why in tc.differences.items():
            out.append(f"  {'REFUSED' if any(why == r for r in tc.refused) else 'allowed'}: {why}")
        for why in tc.refused:
            if why not in tc.differences.values():
                out.append(f"  REFUSED: {why}")
        if not tc.valid:
            out.append("  not compared (INVALID); accept a difference with --allow-differ NAME if it is intended")
            continue
        if tc.metrics:
            level = tc.metrics[0].ci_level
            out.extend("  " + line for line in _table([_row(c) for c in tc.metrics], HEADER))
            out.append(f"  (points ×100; Δ = candidate − baseline; paired cluster-bootstrap {level * 100:g}% CI over videos;"
                       f" MDE at power 0.8; McNemar b = right→wrong, c = wrong→right)")
        for c in tc.metrics:
            if c.flips:
                out.append(f"  {len(c.flips)} sample(s) flipped on {c.metric} (losses first):")
                for f in c.flips[:MAX_FLIPS_SHOWN]:
                    out.append(f"    {f.sample_id}: {f.baseline_score:g}→{f.candidate_score:g}  "
                               f"{f.baseline_parsed!r} → {f.candidate_parsed!r}  "
                               f"[{_short(f.baseline_response)} | {_short(f.candidate_response)}]")
                if len(c.flips) > MAX_FLIPS_SHOWN:
                    out.append(f"    … {len(c.flips) - MAX_FLIPS_SHOWN} more in the JSON output")
        out.extend(f"  note: {n}" for n in tc.notes)
    return "\n".join(out)


def comparison_json(tcs: Sequence[TaskComparison], baseline: str, candidate: str) -> dict[str, Any]:
    return {"baseline": baseline, "candidate": candidate,
            "tasks": {tc.task: {**dataclasses.asdict(tc), "valid": tc.valid} for tc in tcs}}


def _verdict_rows(vs: Sequence[MetricVerdict]) -> list[list[str]]:
    rows = []
    for v in vs:
        c = v.comparison
        rows.append([v.metric, v.verdict.value, f"{v.margin:g}", _pts(c.baseline) if c else "-",
                     _pts(c.candidate) if c else "-", _pts(c.delta, True) if c else "-",
                     f"[{_pts(c.ci_low, True)}, {_pts(c.ci_high, True)}]" if c else "-",
                     str(c.n) if c else "-", str(v.n_needed) if v.n_needed else ""])
    return rows


VERDICT_HEADER = ["metric", "verdict", "margin", "baseline", "candidate", "Δ", "CI", "n", "n to decide"]


def report_text(report) -> str:
    out = [f"regress: {report.verdict.value} (exit {EXIT_CODES[report.verdict]})",
           f"  baseline:  {report.baseline}", f"  candidate: {report.candidate}"]
    for t in report.tasks:
        out.append(f"{t.task}: {t.verdict.value}  (n={t.comparison.n}, coverage {t.comparison.coverage:.1%})")
        out.extend(f"  {r}" for r in t.reasons)
        if t.metrics:
            out.extend("  " + line for line in _table(_verdict_rows(t.metrics), VERDICT_HEADER))
            out.extend(f"  {v.metric}: {v.reason}" for v in t.metrics if v.verdict.value != "PASS")
    return "\n".join(out)


def _level(p) -> str:
    if p.multiplicity == "bonferroni":
        return f"{p.per_metric_level():.4g} (Bonferroni: {p.ci_level:.0%} over {p.n_calls} calls)"
    return f"{p.ci_level:.0%}"


def report_markdown(report) -> str:
    """A Markdown block for CI logs / ``$GITHUB_STEP_SUMMARY``."""
    p = report.policy
    out = [f"## vpbench regress: **{report.verdict.value}**", "",
           f"baseline `{report.baseline}` · candidate `{report.candidate}` · "
           f"{_level(p)} paired cluster-bootstrap CI (B={p.n_boot}) · min_n {p.min_n} · "
           f"min_coverage {p.min_coverage:.0%}", ""]
    for t in report.tasks:
        out.append(f"### {t.task}: {t.verdict.value}")
        out.extend(f"- {r}" for r in t.reasons)
        if t.metrics:
            out.append("")
            out.append("| " + " | ".join(VERDICT_HEADER) + " |")
            out.append("|" + "---|" * len(VERDICT_HEADER))
            out.extend("| " + " | ".join(r) + " |" for r in _verdict_rows(t.metrics))
            out.append("")
            out.extend(f"- `{v.metric}`: {v.reason}" for v in t.metrics if v.verdict.value != "PASS")
        flips = [c for c in (v.comparison for v in t.metrics) if c is not None and c.flips]
        for c in flips:
            lost = sum(1 for f in c.flips if f.candidate_score < f.baseline_score)
            out.append(f"- `{c.metric}`: {lost} sample(s) lost, {len(c.flips) - lost} gained "
                       f"(e.g. {', '.join(f.sample_id for f in c.flips[:5])})")
        out.append("")
    out.append("Margins in points (0-100). PASS: CI low > −margin; REGRESSION: CI high < −margin; "
               "exit codes PASS 0, REGRESSION 10, INCONCLUSIVE 11, INVALID 12.")
    return "\n".join(out) + "\n"


def report_json(report) -> dict[str, Any]:
    def verdict(v: MetricVerdict) -> dict[str, Any]:
        return {"metric": v.metric, "verdict": v.verdict.value, "reason": v.reason, "margin": v.margin,
                "n_needed": v.n_needed, "comparison": dataclasses.asdict(v.comparison) if v.comparison else None}

    return {"verdict": report.verdict.value, "exit_code": EXIT_CODES[report.verdict],
            "baseline": report.baseline, "candidate": report.candidate,
            "policy": {k: v for k, v in dataclasses.asdict(report.policy).items()},
            "tasks": {t.task: {"verdict": t.verdict.value, "reasons": list(t.reasons),
                               "n": t.comparison.n, "coverage": t.comparison.coverage,
                               "differences": t.comparison.differences,
                               "metrics": [verdict(v) for v in t.metrics]} for t in report.tasks}}
