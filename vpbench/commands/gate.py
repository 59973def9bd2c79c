"""``vpbench compare``, ``vpbench regress`` and ``vpbench baseline freeze``.

Exit codes: compare 0 (compared) or 12 (refused: INVALID); regress 0 PASS, 10 REGRESSION,
11 INCONCLUSIVE, 12 INVALID; 2 for a bad flag, policy or input file (as every vpbench command).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vpbench.commands._base import command, group

ORDER = 35


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _write_json(path: str, data) -> None:
    from vpbench.results import write_json

    write_json(Path(path), data)


def _cmd_compare(ns: argparse.Namespace) -> int:
    from vpbench.gate.compare import StatsSettings
    from vpbench.gate.gate import compare_runs
    from vpbench.gate.sides import load_side
    from vpbench.gate.summary import comparison_json, comparison_text
    from vpbench.gate.verdict import Verdict

    base, cand = load_side(Path(ns.run_a)), load_side(Path(ns.run_b))
    st = StatsSettings(n_boot=ns.n_boot, seed=ns.seed, ci_level=ns.ci_level)
    tcs = compare_runs(base, cand, tasks=_csv(ns.tasks) or None, st=st, allow=_csv(ns.allow_differ))
    print(comparison_text(tcs))
    if ns.json:
        _write_json(ns.json, comparison_json(tcs, base.source, cand.source))
    return Verdict.INVALID.exit_code if any(not tc.valid for tc in tcs) else 0


def _cmd_regress(ns: argparse.Namespace) -> int:
    from vpbench.gate.gate import regress
    from vpbench.gate.policy import load_policy
    from vpbench.gate.summary import report_json, report_markdown, report_text

    report = regress(Path(ns.baseline), Path(ns.candidate), load_policy(Path(ns.policy)),
                     allow=_csv(ns.allow_differ))
    print(report_text(report))
    md = report_markdown(report)
    if ns.summary_md:
        Path(ns.summary_md).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.summary_md).write_text(md, encoding="utf-8")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(md)
    if ns.json:
        _write_json(ns.json, report_json(report))
    return report.verdict.exit_code


def _cmd_freeze(ns: argparse.Namespace) -> int:
    from vpbench.gate.baseline import freeze

    counts = freeze(Path(ns.run_dir), Path(ns.output), with_responses=ns.with_responses,
                    tasks=_csv(ns.tasks) or None)
    size = Path(ns.output).stat().st_size
    print(f"baseline: {', '.join(f'{t} ({n} samples)' for t, n in counts.items())} → {ns.output} ({size} bytes)")
    return 0


def register(sub) -> None:
    """Add ``compare``, ``regress`` and ``baseline freeze`` to the top-level subparsers."""
    c = command(sub, "compare", _cmd_compare, help="paired per-sample comparison of two runs (or baseline files)")
    c.add_argument("run_a", help="baseline: run directory or frozen baseline file")
    c.add_argument("run_b", help="candidate: run directory or frozen baseline file")
    c.add_argument("--tasks", help="comma-separated tasks (default: all of RUN_A's)")
    c.add_argument("--allow-differ", metavar="NAMES",
                   help="accept these differences: task_version,protocol,parser,sample_set,gap_options,stack")
    c.add_argument("--json", metavar="FILE", help="also write the full comparison (all flips) as JSON")
    c.add_argument("--n-boot", type=int, default=2000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--ci-level", type=float, default=0.95)

    r = command(sub, "regress", _cmd_regress, help="gate a candidate against a baseline under a policy "
                                       "(exit 0 PASS, 10 REGRESSION, 11 INCONCLUSIVE, 12 INVALID)")
    r.add_argument("--baseline", required=True, help="run directory or frozen baseline file")
    r.add_argument("--candidate", required=True, help="run directory or frozen baseline file")
    r.add_argument("--policy", required=True, help="policy YAML (e.g. reports/policies/ci.yaml)")
    r.add_argument("--allow-differ", metavar="NAMES", help="add to the policy's allow_differ")
    r.add_argument("--summary-md", metavar="FILE",
                   help="write the Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)")
    r.add_argument("--json", metavar="FILE", help="write the verdicts and comparisons as JSON")

    bsub = group(sub, "baseline", help="frozen per-sample baselines for regress")
    f = command(bsub, "freeze", _cmd_freeze, help="write a compact per-sample baseline file from a run (no videos)")
    f.add_argument("run_dir")
    f.add_argument("--output", required=True, help="baseline file (.json, or .json.gz to compress)")
    f.add_argument("--tasks", help="comma-separated tasks (default: all of the run's)")
    f.add_argument("--with-responses", action="store_true", help="keep raw responses (for flip listings)")


__all__ = ["register"]
