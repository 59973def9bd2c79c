"""Run a comparison or a policy gate over two sides (run directories or baseline files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vpbench.errors import ConfigError
from vpbench.gate.align import check_allow, stack_difference
from vpbench.gate.compare import StatsSettings, TaskComparison, compare_task
from vpbench.gate.policy import Policy
from vpbench.gate.sides import RunSide, load_side
from vpbench.gate.verdict import MetricVerdict, Verdict, decide_failure, decide_metric, worst


def _primary_score(task: str) -> str:
    from vpbench.registry import get_task

    return get_task(task).primary_score


def compare_runs(base: RunSide, cand: RunSide, *, tasks: Sequence[str] | None, st: StatsSettings,
                 allow: Sequence[str] = ()) -> list[TaskComparison]:
    """One :class:`TaskComparison` per task (default: the baseline's tasks). A task the candidate
    lacks is refused with that reason."""
    allow = check_allow(tuple(allow))
    names = list(tasks) if tasks else list(base.tasks)
    out = []
    for name in names:
        b = base.task(name)
        if name not in cand.tasks:
            out.append(TaskComparison(name, {}, (f"the candidate ({cand.source}) has no task '{name}'",),
                                      0, 0, 0.0))
            continue
        out.append(compare_task(b, cand.tasks[name], primary_score=_primary_score(name), st=st, allow=allow,
                                run_differences=stack_difference(base.stack, cand.stack)))
    return out


@dataclass(frozen=True)
class TaskVerdict:
    task: str
    verdict: Verdict
    reasons: tuple[str, ...]
    metrics: tuple[MetricVerdict, ...]
    comparison: TaskComparison


@dataclass(frozen=True)
class GateReport:
    verdict: Verdict
    baseline: str
    candidate: str
    policy: Policy
    tasks: tuple[TaskVerdict, ...]


def _task_verdict(tc: TaskComparison, policy: Policy) -> TaskVerdict:
    if not tc.valid:
        return TaskVerdict(tc.task, Verdict.INVALID, tc.refused, (), tc)
    if tc.coverage < policy.min_coverage:
        why = (f"coverage {tc.coverage:.1%} ({tc.n} of the baseline's {tc.n_baseline} scorable samples) is below "
               f"the policy's min_coverage {policy.min_coverage:.1%}")
        return TaskVerdict(tc.task, Verdict.INVALID, (why,), (), tc)
    rules = policy.tasks[tc.task]
    verdicts = []
    for c in tc.metrics:
        if c.metric == "failure_rate":
            verdicts.append(decide_failure(c, policy.failure_rate.max_increase))
        else:
            verdicts.append(decide_metric(c, rules[c.metric].margin, policy.min_n))
    return TaskVerdict(tc.task, worst(v.verdict for v in verdicts), (), tuple(verdicts), tc)


def regress(baseline: Path, candidate: Path, policy: Policy, *, allow: Sequence[str] = ()) -> GateReport:
    """Gate ``candidate`` against ``baseline`` under ``policy`` (``allow`` adds to its allow_differ)."""
    base, cand = load_side(baseline), load_side(candidate)
    missing = [t for t in policy.tasks if t not in base.tasks]
    if missing:
        raise ConfigError(f"the policy gates {missing} but the baseline {base.source} has no such task "
                          f"(it has: {', '.join(base.tasks)})")
    allow_all = check_allow(tuple(dict.fromkeys([*policy.allow_differ, *allow])))
    results = []
    for task, rules in policy.tasks.items():
        metrics = list(rules) + (["failure_rate"] if policy.failure_rate.counts else [])
        if task not in cand.tasks:
            tc = TaskComparison(task, {}, (f"the candidate ({cand.source}) has no task '{task}'",), 0, 0, 0.0)
        else:
            tc = compare_task(base.tasks[task], cand.tasks[task], primary_score=_primary_score(task),
                              st=policy.stats(), allow=allow_all, metrics=metrics,
                              run_differences=stack_difference(base.stack, cand.stack))
        results.append(_task_verdict(tc, policy))
    return GateReport(worst(t.verdict for t in results), base.source, cand.source, policy, tuple(results))
