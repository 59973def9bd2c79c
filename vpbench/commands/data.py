"""`vpbench data check` (preflight a task's data) and `vpbench data craft` (training manifests)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpbench.commands._base import add_set_option, command, group

ORDER = 50


def _check(ns: argparse.Namespace) -> int:
    from vpbench.engine.preflight import check_media, fail_message, media_fix
    from vpbench.registry import get_task
    from vpbench.validation import load_task_samples

    task = get_task(ns.task)
    root = Path(ns.data_root)
    samples = load_task_samples(task, root)
    print(f"{task.name}: {len(samples)} samples, {len({s.cluster for s in samples})} videos, "
          f"{sum(s.answer is None for s in samples)} with hidden answers")
    if not task.requires_video:
        return 0
    protocol = task.resolve_protocol(None, {})  # the run's rules: each clip must yield the task's frames
    report = check_media(task, samples, root, protocol=protocol)
    if report.ok:
        print(f"{task.name}: all videos present, decodable and long enough for the default protocol "
              f"({protocol.describe()})")
        return 0
    print(fail_message(task.name, report, media_fix(task, report, root)), file=sys.stderr)
    return 2


def _craft(ns: argparse.Namespace) -> int:
    from vpbench.config import parse_assignments
    from vpbench.craft.pipeline import load_craft_config, run_craft

    report = run_craft(load_craft_config(Path(ns.config), parse_assignments(ns.set or [])))
    print(f"data craft: {report.processed} processed, {report.skipped} already done, {report.sft} SFT lines, "
          f"{report.rl} RL lines, {report.rejected} rejected, {report.errors} errors; report: {report.report_path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    d = group(sub, "data", help="data utilities")
    dc = command(d, "check", _check, help="preflight a task's data: annotations load, videos decode")
    dc.add_argument("task")
    dc.add_argument("--data-root", required=True)
    dk = command(d, "craft", _craft,
                 help="annotate, validate, sparsify, find key frames; write SFT/RL manifests")
    dk.add_argument("--config", required=True, help="craft config YAML (recipes/configs/craft/*.yaml)")
    add_set_option(dk, "config override, e.g. protocol.fps=2")
