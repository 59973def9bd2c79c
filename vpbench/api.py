"""Public Python API: ``evaluate`` (a run), ``rescore`` (records → results, no model)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench import provenance
from vpbench.engine.overrides import resolve
from vpbench.engine.records import RecordStore
from vpbench.engine.rundir import RunLock, prepare_output
from vpbench.engine.runner import TaskRunOptions, check_task, run_task, summarize
from vpbench.engine.shard import DistContext
from vpbench.errors import ConfigError, RunDirMismatch
from vpbench.models.loader import BackendOptions, load_backend
from vpbench.registry import get_task
from vpbench.results import (SCHEMA_VERSION, format_metric, read_json, render_table, task_result_to_dict,
                             write_json)
from vpbench.types import MetricResult, TaskResult


@dataclass(frozen=True)
class RunConfig:
    model: str
    tasks: tuple[str, ...]
    output: Path
    data_roots: Mapping[str, Path]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    allow_missing: bool = False
    cache: bool = True
    refresh_cache: bool = False
    cache_path: Path | None = None
    frame_cache: Path | None = None
    backend: BackendOptions = BackendOptions()
    perception_gap: bool = False
    prefetch: bool = True  # decode/prepare the next batch on a worker while the model generates
    argv: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("no tasks given: pass --tasks NAME[,NAME...] or 'all'")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"--limit must be a positive integer, got {self.limit!r}")
        if self.refresh_cache and not self.cache:
            raise ConfigError("--refresh-cache and --no-cache contradict each other; pass one")
        missing = [t for t in self.tasks if t not in self.data_roots]
        if missing:
            raise ConfigError(f"no data root for task(s) {', '.join(missing)}: pass --data-root")


def resolve_data_roots(tasks: Sequence[str], given: Sequence[str]) -> dict[str, Path]:
    """``--data-root PATH`` (one task, or a parent with one sub-folder per task) or ``task=PATH``.

    Without the flag, ``$VPBENCH_DATA_DIR/<task>`` is used. The sub-folder is the task's
    ``data_folder`` (its name, or the benchmark it shares files with).
    """
    roots: dict[str, Path] = {}
    plain = [g for g in given if "=" not in g]
    for g in given:
        if "=" in g:
            name, _, path = g.partition("=")
            if name not in tasks:
                raise ConfigError(f"--data-root {g}: '{name}' is not one of the requested tasks {list(tasks)}")
            roots[name] = Path(path)
    if len(plain) > 1:
        raise ConfigError("give one plain --data-root PATH; for several tasks use task=PATH pairs")
    for t in tasks:
        if t in roots:
            continue
        folder = get_task(t).data_folder
        if plain:
            base = Path(plain[0])
            roots[t] = base / folder if len(tasks) > 1 or (base / folder).is_dir() else base
        elif os.environ.get("VPBENCH_DATA_DIR"):
            roots[t] = Path(os.environ["VPBENCH_DATA_DIR"]) / folder
        else:
            raise ConfigError(f"no data root for task '{t}': pass --data-root PATH (or {t}=PATH), "
                              f"or set VPBENCH_DATA_DIR; `vpbench synth {t} --output DIR` makes generated data")
    return roots


def _training_provenance(spec: str) -> dict[str, Any]:
    """A checkpoint trained by a vpbench recipe carries ``vpbench_train.json`` (resolved config,
    step, data manifest hash): copy it into the eval manifest so a score names its recipe."""
    path = Path(spec.split(":", 1)[1] if spec.startswith("hf:") else spec) / "vpbench_train.json"
    return {"training": read_json(path)} if path.is_file() else {}


def _check_manifest(path: Path, model_fp: str) -> None:
    if not path.exists():
        return
    old = read_json(path)
    if old.get("model", {}).get("fingerprint") != model_fp:
        raise RunDirMismatch(
            f"{path.parent} holds a run of a different model ({old.get('model', {}).get('spec')}); "
            f"use a new --output dir to evaluate {model_fp}")


def evaluate(cfg: RunConfig, *, echo=print) -> dict[str, TaskResult]:
    """Run every task. Under torchrun/accelerate each rank evaluates its shard (``engine/shard.py``);
    rank 0 alone writes the manifest and results and prints; every rank returns the results."""
    dist = DistContext.from_env()
    if not dist.is_main:
        echo = _silent
    tasks = [get_task(t) for t in cfg.tasks]
    resolved = resolve(cfg.overrides, cfg.tasks)
    backend = load_backend(cfg.model, dataclasses.replace(cfg.backend, device=dist.device(cfg.backend.device)))
    if cfg.perception_gap:  # refuse before any generation, not after the full pass
        if not backend.needs_frames:
            raise ConfigError("--perception-gap needs a backend that sees frames (not replay or dummy)")
        no_video = [t.name for t in tasks if not t.requires_video]
        if no_video:
            raise ConfigError(f"--perception-gap needs video tasks; {', '.join(no_video)} show no video")
    out = prepare_output(Path(cfg.output))
    with RunLock(out, cfg.argv) if dist.is_main else contextlib.nullcontext():
        opts = {task.name: TaskRunOptions(
            data_root=cfg.data_roots[task.name], limit=cfg.limit, allow_missing=cfg.allow_missing,
            frame_cache_dir=cfg.frame_cache, prefetch=cfg.prefetch, protocol_overrides=resolved.protocol.get(task.name, {}),
            parser=resolved.parser.get(task.name), preset=resolved.preset.get(task.name)) for task in tasks}
        checked = {task.name: check_task(task, backend, opts[task.name]) for task in tasks}  # all, first
        return _evaluate_checked(cfg, dist, tasks, resolved, backend, out, opts, checked, echo)


def _evaluate_checked(cfg, dist, tasks, resolved, backend, out, opts, checked, echo) -> dict[str, TaskResult]:
    from vpbench.engine.invocations import cumulative_cache, invocation, with_invocation

    model_fp = backend.fingerprint()
    manifest_path = out / "manifest.json"
    _check_manifest(manifest_path, model_fp)
    dist.barrier()  # every rank checked the old manifest before rank 0 replaces it
    write = write_json if dist.is_main else _no_write  # rank 0 alone writes run files
    cache = None
    if cfg.cache:
        from vpbench.engine.cache import ResponseCache

        cache = ResponseCache(cfg.cache_path or out / "response_cache.sqlite", refresh=cfg.refresh_cache)
    # this invocation's provenance: stored on every task it runs (a later invocation into the same dir
    # replaces the top-level copy, never the record of how an earlier task was made)
    made_by = {
        "argv": list(cfg.argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
        "environment": provenance.environment(),
        "stats": dataclasses.asdict(resolved.stats),
    }
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        **made_by,
        "model": {"spec": cfg.model, "fingerprint": model_fp, **backend.describe(), **_training_provenance(cfg.model)},
        "world_size": dist.world_size,
        "tasks": {},
        "derived": {},
    }
    results: dict[str, TaskResult] = {}
    task_records: dict[str, tuple] = {}
    results_path = out / "results.json"
    previous = read_json(results_path) if results_path.exists() else {}
    prior = previous.get("results", {})  # tasks run into this dir before keep their results...
    prior_derived = previous.get("derived", {})
    old_manifest = read_json(manifest_path) if manifest_path.exists() else {}
    manifest["tasks"].update(old_manifest.get("tasks", {}))  # ...and their provenance
    manifest["derived"].update(old_manifest.get("derived", {}))
    cache_before = old_manifest.get("cache")
    write(manifest_path, manifest)
    derived: dict[str, Any] = {}
    try:
        for task in tasks:
            topts = opts[task.name]
            hits0, misses0 = (cache.hits, cache.misses) if cache else (0, 0)
            outcome = run_task(task, backend, topts, out, stats=resolved.stats, cache=cache, model_fp=model_fp,
                               dist=dist, checked=checked.pop(task.name))  # its requests are freed once run
            results[task.name] = outcome.result
            task_records[task.name] = outcome.records if _feeds_derived(task.name) else ()
            gap = _perception_gap(task, backend, topts, out, resolved, cache, model_fp, outcome, dist) \
                if cfg.perception_gap else None
            entry = invocation(cfg.argv, n_generated=outcome.n_generated, n_resumed=outcome.n_resumed,
                               cache_hits=dist.sum(cache.hits - hits0) if cache else 0,
                               cache_misses=dist.sum(cache.misses - misses0) if cache else 0)
            manifest["tasks"][task.name] = {
                "version": task.version,
                "data_root": str(topts.data_root),
                "protocol": dataclasses.asdict(outcome.protocol),
                "protocol_fingerprint": outcome.protocol.fingerprint(),
                "parser": outcome.parser.tag,
                "preset": topts.preset,
                "sample_set_hash": outcome.result.sample_set_hash,
                "coverage": outcome.result.coverage,
                "partial": outcome.result.partial,
                "excluded": dict(outcome.excluded),
                **with_invocation(manifest["tasks"].get(task.name), entry),  # cumulative, with history
                **outcome.result.counts,
                "provenance": made_by,
            }
            manifest["cache"] = cumulative_cache(cache_before, dist.sum(cache.hits), dist.sum(cache.misses)) \
                if cache else None
            task_dict = task_result_to_dict(outcome.result)
            if gap is not None:
                task_dict["perception_gap"] = gap
                manifest["tasks"][task.name]["perception_gap"] = dataclasses.asdict(resolved.gap)
                echo(render_gap(task.name, gap))
            write(out / task.name / "result.json", task_dict)
            write(out / task.name / "sample_ids.json", [r.sample_id for r in outcome.records])
            write(manifest_path, manifest)
            prior[task.name] = task_dict
            write(results_path, {"schema_version": SCHEMA_VERSION, "manifest": manifest, "results": prior,
                                 "derived": prior_derived})
        derived = _refresh_derived(out, task_records, manifest, prior_derived, resolved.stats, echo)
        write(manifest_path, manifest)
        write(results_path, {"schema_version": SCHEMA_VERSION, "manifest": manifest, "results": prior,
                             "derived": prior_derived})
    finally:
        if cache:
            cache.close()
    echo(render_table(results))
    for name, m in derived.items():
        echo(f"{name:<36} {format_metric(m)}  (n={m.n})")
    return results


def _feeds_derived(task: str) -> bool:
    """Whether a cross-task metric reads ``task``'s records (only then are they kept after the task)."""
    from vpbench.registry import DERIVED

    return any(task in needs for needs, _target in DERIVED.values())


def _derived(task_records: Mapping[str, Sequence[Any]], stats, echo=print) -> dict[str, Any]:
    """Cross-task metrics (e.g. VideoMMMU Δknowledge) whose tasks all ran in this run. A metric whose
    precondition does not hold on these records is a note, not a failure of the run."""
    from vpbench.errors import DataError, MetricUnavailable
    from vpbench.registry import DERIVED, derived_metric

    out = {}
    for name, (needs, _target) in DERIVED.items():
        if all(t in task_records for t in needs):
            try:
                out[name] = derived_metric(name)(*(task_records[t] for t in needs), stats)
            except (MetricUnavailable, DataError) as e:
                echo(f"note: {name} not reported: {e}")
    return out


def _last_run_records(out: Path, task: str) -> list:
    """The full-pass records of ``task``'s last run in this dir (its ``sample_ids.json`` set)."""
    path = out / task / "records.jsonl"
    ids_file = out / task / "sample_ids.json"
    if not path.exists() or not ids_file.exists():
        return []
    done = RecordStore(path).load()
    return [done[i] for i in read_json(ids_file) if i in done]


def _refresh_derived(out: Path, ran: Mapping[str, Sequence[Any]], manifest: dict[str, Any],
                     derived: dict[str, Any], stats, echo=print) -> dict[str, Any]:
    """Recompute every cross-task metric one of whose tasks ran now, from the records of each input
    task's last run in this dir; drop one that can no longer be computed (never keep a stale value).
    ``manifest["derived"][name]`` names the inputs (task → sample-set hash, protocol fingerprint)."""
    from vpbench.registry import DERIVED

    touched = [name for name, (needs, _t) in DERIVED.items() if any(t in ran for t in needs)]
    records = {t: list(ran[t]) if t in ran else _last_run_records(out, t)
               for name in touched for t in DERIVED[name][0]}
    fresh = _derived({t: r for t, r in records.items() if r}, stats, echo)
    for name in touched:
        derived.pop(name, None)
        manifest["derived"].pop(name, None)
        if name not in fresh:
            continue
        derived[name] = dataclasses.asdict(fresh[name])
        manifest["derived"][name] = {
            "inputs": {t: {k: manifest["tasks"].get(t, {}).get(k) for k in ("sample_set_hash", "protocol_fingerprint")}
                       for t in DERIVED[name][0]},
            "stats": dataclasses.asdict(stats)}
    return fresh


def _task_stats(info: Mapping[str, Any], default):
    """The stats a task was run with (its own provenance), else the run's."""
    from vpbench.task import StatsOptions

    own = info.get("provenance", {}).get("stats")
    return StatsOptions(**own) if own is not None else default


def _refuse_unmerged(task_dir: Path) -> None:
    """Per-rank record files left by an unfinished data-parallel run hold records the merged file lacks."""
    parts = sorted(task_dir.glob("records*.rank*.jsonl"))
    if parts:
        raise RunDirMismatch(f"{task_dir}: {len(parts)} per-rank record files ({parts[0].name}, ...) of an unfinished "
                             f"data-parallel run; re-run the same `vpbench run` command (any --nproc) to finish "
                             f"and merge them, then score")


def _silent(*args: Any, **kwargs: Any) -> None:
    """``echo`` on data-parallel ranks other than 0."""


def _no_write(path: Path, data: Any) -> None:
    """``write_json`` on data-parallel ranks other than 0."""


def _perception_gap(task, backend, opts, out, resolved, cache, model_fp, full, dist) -> dict[str, Any]:
    from vpbench.engine.gap import gap_metrics, make_transform

    absent = run_task(task, backend, opts, out, stats=resolved.stats, cache=cache, model_fp=model_fp,
                      variant="key_absent", transform=make_transform(resolved.gap),
                      variant_fingerprint=resolved.gap.fingerprint(), dist=dist)
    metrics = gap_metrics(full.records, absent.records, task.primary_score, resolved.stats)
    return {k: dataclasses.asdict(v) for k, v in metrics.items()}


def _current_samples(task, info: Mapping[str, Any], echo) -> dict[str, Any]:
    """The task's samples from the run's data root as it is now ({} when it is gone: the records'
    own answers are then used, with a note)."""
    from vpbench.errors import DataError
    from vpbench.validation import load_task_samples

    root = info.get("data_root")
    if not root:
        return {}
    try:
        return {smp.id: smp for smp in load_task_samples(task, Path(root))}
    except DataError as e:
        echo(f"note: {task.name}: scored against the answers stored in the records; the annotation "
             f"could not be read ({str(e).splitlines()[0]})")
        return {}


def render_gap(task: str, gap: Mapping[str, Any]) -> str:
    rows = [f"{task}: perception gap (paired, key frames replaced by their predecessors)"]
    for key in ("full", "key_absent", "delta"):
        m = MetricResult(**gap[key])
        rows.append(f"  {m.name:<34} {format_metric(m)}  (n={m.n}, videos={m.n_clusters})")
    return "\n".join(rows)


def rescore(run_dir: Path, *, parser: str | None = None, output: Path | None = None, argv: Sequence[str] = (),
            echo=print) -> dict[str, TaskResult]:
    """Re-parse and re-score every record of a run (no model, no videos) and rewrite its results,
    including the perception-gap pass and cross-task metrics when the run has them. Appends one
    entry to the manifest's ``scoring_history`` (what changed); with ``output`` the run is first
    copied there and the copy is re-scored (the original is left untouched). Holds the run
    directory's lock, so it never rewrites records under a run that is still appending."""
    source = str(run_dir) if output is not None else None
    run_dir = _copy_run(Path(run_dir), Path(output)) if output is not None else Path(run_dir)
    with RunLock(run_dir, argv) if (run_dir / "manifest.json").is_file() else contextlib.nullcontext():
        return _rescore_unlocked(run_dir, parser, argv, source, echo)


def _rescore_unlocked(run_dir: Path, parser: str | None, argv: Sequence[str], source: str | None,
                      echo) -> dict[str, TaskResult]:
    from vpbench.engine.gap import gap_metrics
    from vpbench.engine.history import scoring_entry, task_change
    from vpbench.engine.requests import sample_set_hash
    from vpbench.engine.runner import refresh_record, rescore_record
    from vpbench.protocol import Protocol
    from vpbench.task import StatsOptions

    manifest = read_json(run_dir / "manifest.json")
    before = read_json(run_dir / "results.json").get("results", {}) if (run_dir / "results.json").exists() else {}
    changes: dict[str, dict[str, Any]] = {}
    run_stats = StatsOptions(**manifest.get("stats", {}))
    results: dict[str, TaskResult] = {}
    task_dicts: dict[str, dict[str, Any]] = {}
    task_records: dict[str, list] = {}
    for name, info in manifest.get("tasks", {}).items():
        task = get_task(name)
        stats = _task_stats(info, run_stats)  # the stats each task was run with, not the last invocation's
        p = task.parser(parser or info.get("parser", "").split("@")[0] or None)
        ids_file = run_dir / name / "sample_ids.json"
        evaluated = set(read_json(ids_file)) if ids_file.exists() else None  # the last run's sample set
        variants: dict[str, list] = {}
        n_reparsed = 0
        _refuse_unmerged(run_dir / name)
        current = _current_samples(task, info, echo)  # a corrected annotation re-scores the records
        for path in sorted((run_dir / name).glob("records*.jsonl")):
            store = RecordStore(path)
            old = list(store.load().values())
            rescored = [rescore_record(task, p, refresh_record(task, p, r, current.get(r.sample_id))) for r in old]
            n_reparsed += sum(a.parsed != b.parsed for a, b in zip(old, rescored))
            store.rewrite(rescored)
            variants[path.name] = [r for r in rescored if evaluated is None or r.sample_id in evaluated]
        if current and variants.get("records.jsonl"):
            info["sample_set_hash"] = sample_set_hash(
                [current[r.sample_id] for r in variants["records.jsonl"] if r.sample_id in current])
        full = variants.get("records.jsonl", [])
        result = summarize(task, full, Protocol(**info["protocol"]), stats, n_total=info.get("n_total", len(full)),
                           sample_set=info.get("sample_set_hash", ""), partial=info.get("partial", False),
                           excluded=info.get("n_excluded", 0))
        task_dict = task_result_to_dict(result)
        if "records.key_absent.jsonl" in variants:
            gap = gap_metrics(full, variants["records.key_absent.jsonl"], task.primary_score, stats)
            task_dict["perception_gap"] = {k: dataclasses.asdict(v) for k, v in gap.items()}
            echo(render_gap(name, task_dict["perception_gap"]))
        changes[name] = task_change(before.get(name), result, info.get("parser"), p.tag, n_reparsed)
        info["parser"] = p.tag
        info.update(result.counts)  # the manifest's counts agree with results.json
        results[name], task_dicts[name], task_records[name] = result, task_dict, full
        write_json(run_dir / name / "result.json", task_dict)
    manifest.setdefault("derived", {})
    derived_dicts: dict[str, Any] = {}
    _refresh_derived(run_dir, task_records, manifest, derived_dicts, run_stats, echo)
    manifest.setdefault("scoring_history", []).append(
        scoring_entry(changes, dataclasses.asdict(run_stats), argv, source))
    write_json(run_dir / "manifest.json", manifest)
    payload: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "manifest": manifest, "results": task_dicts}
    if derived_dicts:
        payload["derived"] = derived_dicts
    write_json(run_dir / "results.json", payload)
    echo(render_table(results))
    return results


def _copy_run(src: Path, dst: Path) -> Path:
    """``vpbench score --output DST``: a copy of the run (without its response cache) to re-score."""
    import shutil

    if not (src / "manifest.json").is_file():
        raise ConfigError(f"{src} is not a vpbench run directory (no manifest.json)")
    if dst.exists() and any(dst.iterdir()):
        raise ConfigError(f"--output {dst} already exists and is not empty: name a new directory")
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.sqlite*", "*.tmp", ".vpbench.lock"))
    return dst
