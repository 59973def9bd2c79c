"""The evaluation loop: plan (preflight → requests → what is done → this rank's share) → execute
(cache → batched generation → records) → finalize (merge rank files) → summarize (scores).

Every finished sample is appended to ``<out>/<task>/records.jsonl`` (``records.rank<k>.jsonl`` on a
data-parallel run, see ``engine/shard.py``) at once; re-running into the same output dir resumes at
any world size (done samples are never generated again). ``<task>/result.json`` and the run-level
``results.json`` are written as each task finishes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.engine import preflight as pf
from vpbench.engine.cache import ResponseCache
from vpbench.engine.gap import Transform
from vpbench.engine.prefetch import FrameLoader, Loaded, Prefetcher, load_sample, prepare_ahead
from vpbench.engine.progress import phase
from vpbench.engine.records import RecordStore
from vpbench.engine.requests import build_request, sample_set_hash
from vpbench.engine.shard import SINGLE, DistContext, rank_files
from vpbench.errors import ConfigError, MetricUnavailable, RunDirMismatch
from vpbench.hashing import stable_hash
from vpbench.models.base import Backend, Prepared
from vpbench.protocol import Protocol
from vpbench.task import Parser, StatsOptions, Task
from vpbench.types import Frames, Record, Request, Response, Sample, TaskResult
from vpbench.validation import load_task_samples


@dataclass(frozen=True)
class TaskRunOptions:
    data_root: Path
    limit: int | None = None
    allow_missing: bool = False
    frame_cache_dir: Path | None = None
    protocol_overrides: Mapping[str, Any] = field(default_factory=dict)
    parser: str | None = None
    preset: str | None = None
    prefetch: bool = True
    """Decode and prepare the next batch on a worker thread while the model generates
    (``engine/prefetch.py``; records are the same either way)."""

    def __post_init__(self) -> None:
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"limit must be a positive integer, got {self.limit!r}")


@dataclass(frozen=True)
class TaskOutcome:
    result: TaskResult
    protocol: Protocol
    parser: Parser
    excluded: Mapping[str, str]
    n_generated: int
    n_resumed: int
    notes: tuple[str, ...]
    records: tuple[Record, ...] = ()




def _frame_loader(cache_dir: Path | None) -> FrameLoader:
    if cache_dir is not None:
        from vpbench.video.cache import FrameCache

        cache = FrameCache(cache_dir)
        return cache.get_or_decode
    from vpbench.video.decode import decode_frames

    return decode_frames


def parse_and_score(task: Task, parser: Parser, text: str, error: str | None, options: tuple[str, ...],
                    meta: Mapping[str, Any], answer: str | None) -> tuple[str | None, dict[str, float]]:
    """Parse a raw response and score it. A failed request parses to None (scored wrong); a hidden
    answer gives no scores (unscorable, never wrong)."""
    parsed = None if error else parser(text, options, meta)
    scores = dict(task.score(parsed, answer, meta)) if answer is not None else {}
    return parsed, scores


def rescore_record(task: Task, parser: Parser, record: Record) -> Record:
    """The same record re-parsed and re-scored (``vpbench score``: no model, no videos)."""
    parsed, scores = parse_and_score(task, parser, record.response, record.error, record.options, record.meta,
                                     record.answer)
    return dataclasses.replace(record, parsed=parsed, parser=parser.tag, scores=scores)


def refresh_record(task: Task, parser: Parser, record: Record, sample: Sample | None) -> Record:
    """``record`` re-parsed/re-scored when its parser or the sample's annotation (answer, options,
    meta, groups, cluster) changed since it was written; the same object when nothing changed."""
    stale = sample is not None and _annotation_key(record) != _annotation_key(sample)
    if not stale and record.parser == parser.tag:
        return record
    if stale:
        assert sample is not None
        record = dataclasses.replace(record, answer=sample.answer, options=sample.options, meta=dict(sample.meta),
                                     groups=dict(sample.groups), cluster=sample.cluster)
    return rescore_record(task, parser, record)


def _annotation_key(x: Record | Sample) -> str:
    return stable_hash((x.answer, tuple(x.options), dict(x.meta), dict(x.groups), x.cluster))


def make_record(task: Task, sample: Sample, request: Request, response: Response, parser: Parser,
                frames: Frames | None, timing: Mapping[str, float], variant: str = "full",
                key_frames: tuple[int, ...] = ()) -> Record:
    parsed, scores = parse_and_score(task, parser, response.text, response.error, sample.options, sample.meta,
                                     sample.answer)
    return Record(
        sample_id=sample.id, task=task.name, cluster=sample.cluster, groups=dict(sample.groups),
        answer=sample.answer, options=sample.options, meta=dict(sample.meta),
        request_fingerprint=request.fingerprint, protocol_fingerprint=request.protocol_fingerprint,
        frame_timestamps_s=(tuple(round(t, 4) for t in frames.timestamps_s) if frames
                            else tuple(response.frame_timestamps_s or ())),
        response=response.text, parsed=parsed, parser=parser.tag, scores=scores,
        timing=dict(timing), error=response.error, variant=variant, key_frames=key_frames,
    )


def _media_identity(task: Task, data_root: Path, request: Request) -> str:
    """Size and mtime of the shown video (a frame folder: of its listing), for the response cache key."""
    if request.video is None:
        return ""
    path = task.video_path(data_root, request.video.path)
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _preflight(task: Task, samples: list[Sample], backend: Backend, opts: TaskRunOptions,
               protocol: Protocol) -> dict[str, str]:
    excluded: dict[str, str] = {}
    own = backend.check_samples(task.name, samples)  # e.g. replay: every sample needs a response
    if own:
        rep = pf.PreflightReport(len(samples), dict(own))
        excluded.update({k: rep.problems[k] for k in pf.enforce(task.name, rep, opts.allow_missing, backend.fix)})
    if backend.needs_frames and task.requires_video:
        rep = pf.check_media(task, [s for s in samples if s.id not in excluded], opts.data_root, protocol=protocol)
        fix = pf.media_fix(task, rep, opts.data_root)
        excluded.update({k: rep.problems[k] for k in pf.enforce(task.name, rep, opts.allow_missing, fix)})
    return excluded


@dataclass(frozen=True)
class Checked:
    """A task checked before any generation (``--tasks all`` checks every task first): protocol,
    parser, validated samples, preflight exclusions and one request per sample (a bad prompt
    template fails here)."""

    protocol: Protocol
    parser: Parser
    n_total: int
    samples: tuple[Sample, ...]
    excluded: Mapping[str, str]
    requests: Mapping[str, Request]


def check_task(task: Task, backend: Backend, opts: TaskRunOptions) -> Checked:
    protocol = task.resolve_protocol(opts.preset, opts.protocol_overrides)
    parser = task.parser(opts.parser)
    check_requirements(task)
    all_samples = load_task_samples(task, Path(opts.data_root))
    samples = all_samples[: opts.limit] if opts.limit else list(all_samples)
    excluded = _preflight(task, samples, backend, opts, protocol)
    samples = [s for s in samples if s.id not in excluded]
    requests = {s.id: build_request(task, s, protocol) for s in samples}
    return Checked(protocol, parser, len(all_samples), tuple(samples), excluded, requests)


def check_requirements(task: Task) -> None:
    """The Python modules the task's scorer imports are installed (else exit 2 before generating)."""
    import importlib.util

    for module, hint in task.requires.items():
        if importlib.util.find_spec(module) is None:
            raise MetricUnavailable(f"{task.name}: scoring needs the Python module '{module}', which is not "
                                    f"installed; Fix: {hint}")


@dataclass
class TaskPlan:
    """What one process will do for a task: the evaluated samples, their requests, what earlier runs
    (at any world size) finished, and this rank's share of the rest."""

    task: Task
    protocol: Protocol
    parser: Parser
    n_total: int
    samples: list[Sample]
    excluded: dict[str, str]
    requests: dict[str, Request]
    base: str  # record file name of this variant, e.g. records.jsonl
    store: RecordStore  # this rank's record file
    n_pending: int  # samples still to generate, all ranks together
    todo: list[Sample]  # this rank's share of them
    variant: str = "full"


def plan_task(task: Task, backend: Backend, opts: TaskRunOptions, out_dir: Path, *, variant: str = "full",
              variant_fingerprint: str = "", dist: DistContext = SINGLE, checked: Checked | None = None) -> TaskPlan:
    """Preflight (unless ``checked`` already did), read every record file of the task and pick this
    rank's samples."""
    c = checked or check_task(task, backend, opts)
    protocol, parser, samples, excluded = c.protocol, c.parser, list(c.samples), dict(c.excluded)
    base = "records.jsonl" if variant == "full" else f"records.{variant}.jsonl"
    store = RecordStore(out_dir / task.name / dist.record_file(base))
    done = _load_all(out_dir / task.name, base, store, compact=True)  # ids, errors, fingerprints
    requests = dict(c.requests)
    if variant != "full":
        requests = {sid: dataclasses.replace(r, fingerprint=stable_hash(
            (r.fingerprint, variant, variant_fingerprint), length=32)) for sid, r in requests.items()}
    stale = [sid for sid, r in done.items() if sid in requests and r.request_fingerprint != requests[sid].fingerprint]
    if stale:
        raise RunDirMismatch(
            f"{out_dir / task.name / base}: {len(stale)} records were made under a different prompt/protocol "
            f"(e.g. {stale[0]}); write to a new --output dir, or delete {out_dir / task.name}/records* to start over")
    # failed requests (OOM, decode errors) are retried
    pending = [s for s in samples if s.id not in done or done[s.id].error is not None]
    return TaskPlan(task, protocol, parser, c.n_total, samples, excluded, requests, base, store,
                    len(pending), [s for s in pending if dist.owns(s.id)], variant)


def _load_all(task_dir: Path, base: str, own: RecordStore, *, compact: bool = False) -> dict[str, Record]:
    """Records of every file of this variant (``records.jsonl`` and any ``records.rank<k>.jsonl``).
    Across files a finished record is never replaced by a failed one; within a file the last wins.
    ``compact``: see :meth:`RecordStore.load`."""
    merged: dict[str, Record] = {}
    for path in [task_dir / base, *rank_files(task_dir, base)]:
        if not path.exists():
            continue
        store = own if path == own.path else RecordStore(path)
        for sid, rec in store.load(repair=store is own, compact=compact).items():
            if sid not in merged or rec.error is None or merged[sid].error is not None:
                merged[sid] = rec
        if store is own and store.dropped_partial_line:
            print(f"vpbench: {store.path}: dropped a torn last line (a run was killed mid-write); that sample is "
                  f"done again (served from the response cache when it holds the response)", file=sys.stderr)
    return merged


def execute(plan: TaskPlan, backend: Backend, opts: TaskRunOptions, *, cache: ResponseCache | None,
            model_fp: str, transform: Transform | None = None, show_progress: bool = True) -> int:
    """Generate this rank's pending samples in batches, appending each record as it finishes.
    With ``opts.prefetch`` (and no frame transform) the next batch is decoded and prepared on a
    worker thread meanwhile. Returns the number of samples sent to the backend (cache hits excluded)."""
    load_frames = _frame_loader(opts.frame_cache_dir) if backend.needs_frames else None
    n_generated = 0
    size = max(1, backend.batch_size)
    chunks = [plan.todo[i: i + size] for i in range(0, len(plan.todo), size)]
    ahead = None
    if opts.prefetch and load_frames is not None and transform is None and len(chunks) > 1:
        ahead = Prefetcher(_prefetch_work(plan, backend, opts, load_frames))
    with phase(f"{plan.task.name}: generate", len(plan.todo), enabled=show_progress) as bar, \
            plan.store.writer() as writer, ahead or contextlib.nullcontext():
        for k, chunk in enumerate(chunks):
            ready = ahead.take() if ahead else {}
            if ahead and k + 1 < len(chunks):
                ahead.submit(_not_cached(plan, chunks[k + 1], opts, cache, model_fp))
            records, n = _run_batch(plan, chunk, backend, opts, cache, model_fp, load_frames, transform, ready)
            n_generated += n
            writer.commit(records)  # group commit: a kill from here on cannot lose this batch
            bar.update(len(records))
    return n_generated


def _prefetch_work(plan: TaskPlan, backend: Backend, opts: TaskRunOptions, load_frames: FrameLoader):
    prepare = getattr(backend, "prepare", None)

    def work(chunk: Sequence[Sample]) -> dict[str, Loaded]:
        out = {}
        for s in chunk:
            req = plan.requests[s.id]
            if req.video is not None:
                out[s.id] = prepare_ahead(s, req, plan.task.video_path(opts.data_root, req.video.path), plan.protocol,
                                          load_frames, prepare)
        return out
    return work


def _not_cached(plan: TaskPlan, chunk: list[Sample], opts: TaskRunOptions, cache: ResponseCache | None,
                model_fp: str) -> list[Sample]:
    """The samples of ``chunk`` worth preparing ahead: those the response cache does not hold now."""
    if cache is None:
        return chunk
    return [s for s in chunk if not cache.holds(model_fp, plan.requests[s.id],
                                                _media_identity(plan.task, opts.data_root, plan.requests[s.id]))]


def _run_batch(plan: TaskPlan, chunk: list[Sample], backend: Backend, opts: TaskRunOptions,
               cache: ResponseCache | None, model_fp: str, load_frames: FrameLoader | None,
               transform: Transform | None, ready: Mapping[str, Loaded] | None = None) -> tuple[list[Record], int]:
    task, protocol = plan.task, plan.protocol
    responses: dict[str, Response] = {}
    misses: list[Prepared] = []
    frames_by_id: dict[str, Frames | None] = {}
    keys_by_id: dict[str, tuple[int, ...]] = {}
    media: dict[str, str] = {}
    decode_s: dict[str, float] = {}
    for s in chunk:
        req = plan.requests[s.id]
        media[s.id] = _media_identity(task, opts.data_root, req) if backend.needs_frames else ""
        hit = cache.get(model_fp, req, media[s.id]) if cache else None
        if hit is not None and transform is None and (
                hit.frame_timestamps_s is not None or load_frames is None or req.video is None):
            responses[s.id] = hit
            frames_by_id[s.id] = None
            continue
        path = task.video_path(opts.data_root, req.video.path) if req.video else None
        loaded = (ready or {}).get(s.id)
        if loaded is None and load_frames is not None and req.video is not None:
            assert path is not None
            loaded = load_sample(path, protocol, load_frames, req, s, transform)
        loaded = loaded or Loaded()
        if loaded.failure is not None:
            raise loaded.failure
        if loaded.error is not None:
            responses[s.id] = Response(s.id, "", error=loaded.error)
        if loaded.keys:
            keys_by_id[s.id] = loaded.keys
        decode_s[s.id] = loaded.seconds
        frames_by_id[s.id] = loaded.frames
        if hit is not None:
            responses[s.id] = hit
        if s.id not in responses:
            misses.append(loaded.prepared or Prepared(req, loaded.frames, path))
    if misses:
        t0 = time.perf_counter()
        out = backend.generate(misses)
        gen_s = (time.perf_counter() - t0) / len(misses)
        for p, resp in zip(misses, out, strict=True):
            if resp.latency_s is None:
                resp = dataclasses.replace(resp, latency_s=gen_s)
            responses[p.request.sample_id] = resp
            if cache:
                cache.put(model_fp, p.request, resp, media[p.request.sample_id], frames=p.frames)
    records = []
    for s in chunk:
        resp = responses[s.id]
        timing = {"decode_s": round(decode_s.get(s.id, 0.0), 4), "generate_s": round(resp.latency_s or 0.0, 4)}
        records.append(make_record(task, s, plan.requests[s.id], resp, plan.parser, frames_by_id.get(s.id), timing,
                                   plan.variant, keys_by_id.get(s.id, ())))
    return records, len(misses)


def finalize(plan: TaskPlan, out_dir: Path, dist: DistContext = SINGLE) -> dict[str, Record]:
    """After every rank finished: rank 0 merges all record files of the task into the main file
    (re-parsing records made under another parser), removes the rank files; every rank then reads
    the merged records, compactly (``RecordStore.load(compact=True)``: for aggregation only)."""
    task_dir = out_dir / plan.task.name
    dist.barrier()
    merged: dict[str, Record] | None = None
    if dist.is_main:
        parts = rank_files(task_dir, plan.base)
        merged = _load_all(task_dir, plan.base, RecordStore(task_dir / plan.base), compact=True)
        # a parser change re-parses finished records, a corrected annotation (answer, options, meta)
        # re-scores them against the current sample
        current = {s.id: s for s in plan.samples}
        if parts or any(_needs_refresh(plan.parser, r, current.get(sid)) for sid, r in merged.items()):
            merged = None  # rewrite from the full records, then read the result back compactly
            _merge_and_rewrite(plan, task_dir, current, parts)
    dist.barrier()
    if merged is None or dist.distributed:
        merged = RecordStore(task_dir / plan.base).load(repair=False, compact=True)
    return merged


def _needs_refresh(parser: Parser, record: Record, sample: Sample | None) -> bool:
    """Whether :func:`refresh_record` would change ``record``."""
    return record.parser != parser.tag or (sample is not None and _annotation_key(record) != _annotation_key(sample))


def _merge_and_rewrite(plan: TaskPlan, task_dir: Path, current: Mapping[str, Sample], parts: list[Path]) -> None:
    main = RecordStore(task_dir / plan.base)
    full = _load_all(task_dir, plan.base, main)
    refreshed = [refresh_record(plan.task, plan.parser, r, current.get(sid)) for sid, r in full.items()]
    del full
    order = {s.id: i for i, s in enumerate(plan.samples)}
    main.rewrite(sorted(refreshed, key=lambda r: order.get(r.sample_id, len(order))))
    for p in parts:
        p.unlink()


def run_task(task: Task, backend: Backend, opts: TaskRunOptions, out_dir: Path, *, stats: StatsOptions,
             cache: ResponseCache | None, model_fp: str, variant: str = "full",
             transform: Transform | None = None, variant_fingerprint: str = "",
             dist: DistContext = SINGLE, checked: Checked | None = None) -> TaskOutcome:
    """Evaluate one task: plan → execute this rank's batches → merge (rank 0) → summarize.
    ``variant``/``transform`` run a frame-transformed pass (the perception gap's key-absent videos)
    into its own record files and cache keys."""
    if variant != "full" and (transform is None or not backend.needs_frames):
        raise ValueError(f"variant '{variant}' needs a frame transform and a backend that sees frames")
    plan = plan_task(task, backend, opts, out_dir, variant=variant, variant_fingerprint=variant_fingerprint,
                     dist=dist, checked=checked)
    del checked  # the caller hands its copy over: requests are freed once generated
    n_generated = execute(plan, backend, opts, cache=cache, model_fp=model_fp, transform=transform,
                          show_progress=dist.is_main)
    plan.requests = {}
    done = finalize(plan, out_dir, dist)
    n_generated = dist.sum(n_generated)
    records = [done[s.id] for s in plan.samples]
    result = summarize(task, records, plan.protocol, stats, n_total=plan.n_total,
                       sample_set=sample_set_hash(plan.samples), partial=bool(opts.limit) or bool(plan.excluded),
                       excluded=len(plan.excluded))
    return TaskOutcome(result, plan.protocol, plan.parser, plan.excluded, n_generated,
                       len(plan.samples) - plan.n_pending, result.notes, tuple(records))


def summarize(task: Task, records: Sequence[Record], protocol: Protocol, stats: StatsOptions, *,
              n_total: int, sample_set: str, partial: bool, excluded: int) -> TaskResult:
    """Aggregate records into a TaskResult (pure: also used by ``vpbench score``)."""
    agg = task.aggregate(records, stats)
    n_failed = sum(1 for r in records if r.error)
    n_unparsed = sum(1 for r in records if r.error is None and r.parsed is None)
    return TaskResult(
        task=task.name, task_version=task.version, protocol_fingerprint=protocol.fingerprint(),
        sample_set_hash=sample_set,
        coverage=len(records) / max(1, n_total), partial=partial,
        metrics=agg.metrics, by_group=dict(agg.by_group),
        counts={"n_total": n_total, "n_evaluated": len(records), "n_excluded": excluded,
                "n_scorable": sum(1 for r in records if r.answer is not None),
                "n_failed": n_failed, "n_unparsed": n_unparsed},
        notes=tuple(agg.notes),
    )
