"""`vpbench run`: evaluate a model on tasks into a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands import _lmms_compat as compat
from vpbench.commands._base import add_set_option, command, positive_int, print_run_files

ORDER = 10


def _run(ns: argparse.Namespace) -> int:
    from vpbench.errors import ConfigError

    if ns.tasks.strip() == "list":  # lm-eval / lmms-eval's `--tasks list`
        from vpbench.commands.tasks import _tasks

        return _tasks(argparse.Namespace(data_dir=None))
    compat.apply(ns)
    missing = [f for f, v in (("--model", ns.model), ("--output", ns.output)) if not v]
    if missing:
        raise ConfigError(f"vpbench run needs {' and '.join(missing)} (see `vpbench run --help`)")
    return _evaluate(ns)


def _evaluate(ns: argparse.Namespace) -> int:
    from vpbench.api import RunConfig, evaluate, resolve_data_roots
    from vpbench.config import parse_assignments
    from vpbench.models.loader import BackendOptions
    from vpbench.registry import resolve_task_list

    if ns.nproc > 1:  # data parallel: the same command on N processes (vpbench/engine/launch.py)
        from vpbench.engine.launch import relaunch

        return relaunch(ns.nproc, ns.argv[1:])
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
        perception_gap=ns.perception_gap, prefetch=not ns.no_prefetch,
        argv=tuple(ns.argv),
    )
    evaluate(cfg)
    from vpbench.engine.shard import DistContext

    if DistContext.from_env().is_main:  # data-parallel ranks other than 0 print nothing
        print_run_files(cfg.output)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = command(sub, "run", _run, help="evaluate a model on tasks")
    r.add_argument("--model", help="checkpoint dir | hf:DIR | vllm:DIR | openai:URL[#MODEL] | lmms:NAME[,k=v] | "
                                   "replay:FILE | dummy:first|random[:SEED] (required)")
    r.add_argument("--tasks", required=True, help="comma-separated task names, 'all', or 'list' to list them")
    r.add_argument("--output", "--output_path", dest="output",
                   help="run directory (required; re-running into it resumes)")
    r.add_argument("--data-root", action="append", help="PATH, or TASK=PATH (repeatable)")
    add_set_option(r, "override: protocol.fps=1, TASK.protocol.nframes=8, parser=lmms_eval, stats.n_boot=2000")
    r.add_argument("--limit", type=compat.limit_type, metavar="N",
                   help="first N samples per task (the run is marked partial)")
    r.add_argument("--allow-missing", action="store_true", help="exclude samples whose video is missing/broken")
    r.add_argument("--batch-size", "--batch_size", dest="batch_size", type=positive_int, default=None,
                   help="samples per generate call (default: the backend's; hf: 8 where batching is exact)")
    r.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="model weights dtype")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    r.add_argument("--trust-remote-code", action="store_true", help="allow a checkpoint's own modelling code")
    r.add_argument("--nproc", type=positive_int, default=1,
                   help="data-parallel processes, one device each (re-launches under torchrun)")
    r.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    r.add_argument("--no-prefetch", action="store_true",
                   help="decode the next batch only after the current one (default: on a worker thread meanwhile)")
    r.add_argument("--refresh-cache", action="store_true", help="regenerate and overwrite cached responses")
    r.add_argument("--cache-path", help="response cache file (default: OUTPUT/response_cache.sqlite)")
    r.add_argument("--frame-cache", help="directory for the decoded-frame cache (off by default)")
    r.add_argument("--perception-gap", action="store_true",
                   help="also run on key-information-absent videos and report the paired difference "
                        "(key-frame scorer via --set gap.scorer=blip2|clip|motion_energy|random, gap.scorer_path=DIR)")
    compat.add_aliases(r)
