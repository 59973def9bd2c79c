"""Command line: each subcommand parses its flags and calls one API function.

Exit codes: 0 ok, 2 user error (bad flag/config/data, with a message saying the fix),
4 internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from vpbench.config import parse_assignments, suggest
from vpbench.errors import VpbenchError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from e
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for unknown flags and no prefix abbreviations."""

    def __init__(self, *a, **kw) -> None:
        kw.setdefault("allow_abbrev", False)
        super().__init__(*a, **kw)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, unknown = self.parse_known_args(args, namespace)
        if unknown:
            known = [o for a in self._get_all_actions() for o in a.option_strings]
            flag = unknown[0].split("=")[0]
            self.error(f"unknown argument '{unknown[0]}'{suggest(flag, known)}")
        return ns

    def _get_all_actions(self):
        acts = list(self._actions)
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    acts.extend(sub._actions)
        return acts


def _cmd_run(ns: argparse.Namespace) -> int:
    from vpbench.api import RunConfig, evaluate, resolve_data_roots
    from vpbench.models.loader import BackendOptions
    from vpbench.registry import resolve_task_list

    tasks = tuple(resolve_task_list(ns.tasks))
    cfg = RunConfig(
        model=ns.model, tasks=tasks, output=Path(ns.output),
        data_roots=resolve_data_roots(tasks, ns.data_root or []),
        overrides=parse_assignments(ns.set or []), limit=ns.limit, allow_missing=ns.allow_missing,
        cache=not ns.no_cache, refresh_cache=ns.refresh_cache,
        cache_path=Path(ns.cache_path) if ns.cache_path else None,
        frame_cache=Path(ns.frame_cache) if ns.frame_cache else None,
        backend=BackendOptions(batch_size=ns.batch_size, dtype=ns.dtype, device=ns.device,
                               trust_remote_code=ns.trust_remote_code),
        perception_gap=ns.perception_gap,
        argv=tuple(ns.argv),
    )
    evaluate(cfg)
    return 0


def _cmd_score(ns: argparse.Namespace) -> int:
    from vpbench.api import rescore

    rescore(Path(ns.run_dir), parser=ns.parser)
    return 0


def _cmd_export(ns: argparse.Namespace) -> int:
    import json

    from vpbench.engine.records import RecordStore
    from vpbench.errors import ConfigError
    from vpbench.registry import get_task

    task = get_task(ns.task)
    if task.export is None:
        raise ConfigError(f"task '{task.name}' has no official submission format to export")
    path = Path(ns.run_dir) / task.name / "records.jsonl"
    if not path.exists():
        raise ConfigError(f"{path} not found: run {task.name} into {ns.run_dir} first")
    records = list(RecordStore(path).load().values())
    Path(ns.output).write_text(json.dumps(task.export(records), indent=1, ensure_ascii=False) + "\n")
    print(f"{task.name}: wrote {len(records)} answers to {ns.output}")
    return 0


def _cmd_tasks(ns: argparse.Namespace) -> int:
    from vpbench.registry import get_task, task_names

    data = Path(ns.data_dir) if ns.data_dir else (Path(os.environ["VPBENCH_DATA_DIR"])
                                                  if os.environ.get("VPBENCH_DATA_DIR") else None)
    for name in task_names():
        try:
            task = get_task(name)
        except Exception as e:  # a broken task definition must not hide the others
            print(f"{name:<22} ERROR loading definition: {e}")
            continue
        status = ""
        if data is not None:
            root = data / task.data_folder
            missing = [f for f in task.annotation_files if not (root / f).exists()]
            status = "  [data: ok]" if not missing else f"  [data: missing {missing[0]}]"
        print(f"{name:<22} v{task.version:<6} {task.description}{status}")
    return 0


def _cmd_data_check(ns: argparse.Namespace) -> int:
    from vpbench.engine.preflight import check_media, fail_message
    from vpbench.registry import get_task

    task = get_task(ns.task)
    root = Path(ns.data_root)
    samples = task.load_samples(root)
    print(f"{task.name}: {len(samples)} samples, {len({s.cluster for s in samples})} videos, "
          f"{sum(s.answer is None for s in samples)} with hidden answers")
    if not task.requires_video:
        return 0
    report = check_media(task, samples, root)
    if report.ok:
        print(f"{task.name}: all videos present and decodable")
        return 0
    print(fail_message(task.name, report, f"Fix: place the videos under {root / task.video_dir}."),
          file=sys.stderr)
    return 2


def _cmd_data_craft(ns: argparse.Namespace) -> int:
    from vpbench.craft.pipeline import load_craft_config, run_craft

    report = run_craft(load_craft_config(Path(ns.config), parse_assignments(ns.set or [])))
    print(f"data craft: {report.processed} processed, {report.skipped} already done, {report.sft} SFT lines, "
          f"{report.rl} RL lines, {report.rejected} rejected, {report.errors} errors; report: {report.report_path}")
    return 0


def _cmd_train(ns: argparse.Namespace) -> int:
    import subprocess

    from vpbench.errors import ConfigError

    recipe = Path(__file__).resolve().parent.parent / "recipes" / f"{ns.recipe}.py"
    if not recipe.is_file():
        raise ConfigError(f"recipe not found: {recipe} (run from a vpbench checkout)")
    if ns.nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ns.nproc}", str(recipe)]
    else:
        cmd = [sys.executable, str(recipe)]
    cmd += ["--config", ns.config, *(["--prepare-tiny"] if ns.prepare_tiny else []), *ns.overrides]
    print("vpbench: " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode


def _cmd_synth(ns: argparse.Namespace) -> int:
    from vpbench.registry import get_task, resolve_task_list

    names = resolve_task_list(ns.task)
    out = Path(ns.output)
    done: set[str] = set()
    for name in names:
        task = get_task(name)
        if task.synth is None:
            print(f"{name}: no generator", file=sys.stderr)
            return 2
        target = out / task.data_folder if len(names) > 1 else out
        if str(target) in done:  # a task variant sharing another task's files
            continue
        task.synth(target, ns.seed)
        done.add(str(target))
        print(f"{name}: generated data in {target}")
    return 0


def _cmd_model_tiny(ns: argparse.Namespace) -> int:
    from vpbench.models.tiny_qwen import build_tiny_qwen

    path = build_tiny_qwen(Path(ns.output), seed=ns.seed)
    print(f"tiny Qwen2.5-VL checkpoint written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vpbench", description="Evaluate and train video MLLMs on fine-grained perception.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="evaluate a model on tasks")
    r.add_argument("--model", required=True, help="checkpoint dir | hf:DIR | replay:FILE | dummy:first|random[:SEED]")
    r.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    r.add_argument("--output", required=True, help="run directory (re-running into it resumes)")
    r.add_argument("--data-root", action="append", help="PATH, or TASK=PATH (repeatable)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override: protocol.fps=1, TASK.protocol.nframes=8, parser=lmms_eval, stats.n_boot=2000")
    r.add_argument("--limit", type=_positive_int, help="first N samples per task (the run is marked partial)")
    r.add_argument("--allow-missing", action="store_true", help="exclude samples whose video is missing/broken")
    r.add_argument("--batch-size", type=int, default=1)
    r.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    r.add_argument("--device", default="auto")
    r.add_argument("--trust-remote-code", action="store_true")
    r.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    r.add_argument("--refresh-cache", action="store_true", help="regenerate and overwrite cached responses")
    r.add_argument("--cache-path", help="response cache file (default: OUTPUT/response_cache.sqlite)")
    r.add_argument("--frame-cache", help="directory for the decoded-frame cache (off by default)")
    r.add_argument("--perception-gap", action="store_true",
                   help="also run on key-information-absent videos and report the paired difference "
                        "(key-frame scorer via --set gap.scorer=blip2|clip|motion_energy|random, gap.scorer_path=DIR)")
    r.set_defaults(fn=_cmd_run)

    s = sub.add_parser("score", help="re-parse and re-score a run's records (no model)")
    s.add_argument("run_dir")
    s.add_argument("--parser", help="parser name (default: the one the run used)")
    s.set_defaults(fn=_cmd_score)

    e = sub.add_parser("export", help="write a benchmark's official submission file from a run")
    e.add_argument("run_dir")
    e.add_argument("--task", required=True)
    e.add_argument("--output", required=True)
    e.set_defaults(fn=_cmd_export)

    t = sub.add_parser("tasks", help="list registered tasks and their data status")
    t.add_argument("--data-dir", help="parent folder with one sub-folder per task")
    t.set_defaults(fn=_cmd_tasks)

    d = sub.add_parser("data", help="data utilities")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dc = dsub.add_parser("check", help="preflight a task's data: annotations load, videos decode")
    dc.add_argument("task")
    dc.add_argument("--data-root", required=True)
    dc.set_defaults(fn=_cmd_data_check)

    dk = dsub.add_parser("craft", help="annotate, validate, sparsify, find key frames; write SFT/RL manifests")
    dk.add_argument("--config", required=True, help="craft config YAML (recipes/configs/craft/*.yaml)")
    dk.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, e.g. protocol.fps=2")
    dk.set_defaults(fn=_cmd_data_craft)

    tr = sub.add_parser("train", help="run a training recipe (recipes/<name>.py)")
    tsub = tr.add_subparsers(dest="train_command", required=True)
    ts = tsub.add_parser("sft", help="stage 1: SFT with intermediate-layer contrastive learning")
    ts.add_argument("--config", required=True, help="recipes/configs/sft_contrastive/*.yaml")
    ts.add_argument("--nproc", type=int, default=1, help="processes (torchrun) for multi-GPU DDP")
    ts.add_argument("--prepare-tiny", action="store_true", help="build the tiny model + synthetic data if absent")
    ts.add_argument("overrides", nargs="*", help="section.key=value, e.g. contrastive.weight=0")
    ts.set_defaults(fn=_cmd_train, recipe="sft_contrastive")

    g = sub.add_parser("synth", help="write generated data in a benchmark's native format")
    g.add_argument("task", help="task name or 'all'")
    g.add_argument("--output", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(fn=_cmd_synth)

    m = sub.add_parser("model", help="model utilities")
    msub = m.add_subparsers(dest="model_command", required=True)
    mt = msub.add_parser("tiny", help="build a tiny random Qwen2.5-VL checkpoint (tests, demos)")
    mt.add_argument("--output", required=True)
    mt.add_argument("--seed", type=int, default=0)
    mt.set_defaults(fn=_cmd_model_tiny)
    __import__("vpbench.commands.reproduce", fromlist=["register"]).register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = parser.parse_args(argv)
    ns.argv = ["vpbench", *argv]
    try:
        return int(ns.fn(ns))
    except VpbenchError as e:
        print(f"vpbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vpbench: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
