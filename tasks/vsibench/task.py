"""VSI-Bench (nyu-visionx, "Thinking in Space"): visual-spatial QA over indoor scene videos.

Data root = the HF dataset ``nyu-visionx/VSI-Bench`` as downloaded, with the video zips extracted
in place: ``test-00000-of-00001.parquet`` (original release; the newer ``test.jsonl`` is read when
the parquet is absent) and ``<dataset>/<scene_name>.mp4`` for dataset in arkitscenes / scannet /
scannetpp. Sample id = the official integer ``id`` as a string; cluster = ``<dataset>/<scene>``.

Scoring follows the official code (``vision-x-nyu/thinking-in-space@51e089c``): MCA questions by
exact match of the first response token with the answer letter, NA questions by mean relative
accuracy over 10 thresholds with ``<=``; Avg = macro mean of 8 task scores, relative direction
first averaged over its easy / medium / hard subtypes. Prompt and decoding as the official
``vsibench.yaml`` default (``lmms_eval_specific_kwargs.default``): 32 frames, greedy, 16 new tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vpbench.errors import DataError
from vpbench.metrics.aggregate import ci_method, group_metrics, mean_metric, scorable
from vpbench.metrics.stats import cluster_bootstrap_fn
from vpbench.metrics.vsi import (
    MCA_TYPES, NA_TYPES, REL_DIRECTION, TASK_COLUMNS, TASKS, mean_relative_accuracy,
    subscores_from_type_means, task_of,
)
from vpbench.parsers.vsibench import PARSERS, option_letters
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, MetricResult, Record, Sample, VideoRef

PARQUET = "test-00000-of-00001.parquet"
JSONL = "test.jsonl"
DATASETS = ("arkitscenes", "scannet", "scannetpp")
QUESTION_TYPES = MCA_TYPES + NA_TYPES

PRE_PROMPT = "These are frames of a video."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
PROMPT = "{prompt}"
"""Template fields: ``prompt`` (the official text), ``pre_prompt``, ``question``, ``options``
(newline-joined, empty for NA) and ``post_prompt``."""


def read_rows(root: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Rows of the annotation file (parquet, else test.jsonl) as plain dicts."""
    root = Path(root)
    parquet, jsonl = root / PARQUET, root / JSONL
    if parquet.exists():
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise DataError(f"{parquet}: reading parquet needs pyarrow: pip install pyarrow==25.0.1") from e
        try:
            return parquet, pq.read_table(parquet).to_pylist()
        except Exception as e:  # pyarrow raises ArrowInvalid & co.
            raise DataError(f"{parquet}: not a readable parquet file ({e}); re-download it") from e
    if jsonl.exists():
        rows = []
        for n, line in enumerate(jsonl.read_text(encoding="utf-8").split("\n"), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{jsonl}:{n}: not JSON ({e})") from e
        return jsonl, rows
    raise DataError(
        f"{parquet} not found (nor {JSONL}): download the HF dataset nyu-visionx/VSI-Bench into the data "
        f"root and unzip {', '.join(d + '.zip' for d in DATASETS)} there, or run `vpbench synth vsibench`"
    )


def _sample(row: Mapping[str, Any], where: str) -> Sample:
    try:
        rid, dataset, scene = row["id"], str(row["dataset"]), str(row["scene_name"])
        qtype, question, gt = str(row["question_type"]), str(row["question"]), str(row["ground_truth"])
    except KeyError as e:
        raise DataError(f"{where}: missing field {e}; expected the VSI-Bench columns id, dataset, "
                        f"scene_name, question_type, question, ground_truth, options") from e
    if qtype not in QUESTION_TYPES:
        raise DataError(f"{where}: unknown question_type {qtype!r}; expected one of {list(QUESTION_TYPES)}")
    options = tuple(str(o) for o in (row.get("options") or ()))
    if qtype in MCA_TYPES:
        if gt.upper() not in option_letters(options):
            raise DataError(f"{where}: MCA ground_truth {gt!r} is not one of the option letters of {list(options)}")
        kind = "MCA"
    else:
        try:
            target = float(gt)
        except ValueError as e:
            raise DataError(f"{where}: NA ground_truth {gt!r} is not a number") from e
        if not target > 0:
            raise DataError(f"{where}: NA ground_truth {gt!r} must be > 0 (MRA divides by it)")
        kind = "NA"
    return Sample(
        id=str(rid), task="vsibench", video=VideoRef(f"{dataset}/{scene}.mp4"), question=question,
        options=options, answer=gt, cluster=f"{dataset}/{scene}",
        groups={"question_type": qtype, "task": task_of(qtype), "dataset": dataset},
        meta={"answer_type": kind, "question_type": qtype},
    )


def load_samples(root: Path) -> list[Sample]:
    path, rows = read_rows(root)
    samples, seen = [], set()
    for i, row in enumerate(rows):
        where = f"{path} row {i} (id={row.get('id')!r})"
        s = _sample(row, where)
        if s.id in seen:
            raise DataError(f"{where}: duplicate id {s.id!r}; ids must be unique")
        seen.add(s.id)
        samples.append(s)
    return samples


def prompt_fields(sample: Sample) -> dict[str, str]:
    """The official prompt (``vsibench_doc_to_text``, default kwargs) and its parts."""
    if sample.meta.get("answer_type") == "MCA":
        options = "\n".join(sample.options)
        post = MCA_POST_PROMPT
        prompt = "\n".join([PRE_PROMPT, sample.question, "Options:\n" + options, post])
    else:
        options, post = "", NA_POST_PROMPT
        prompt = PRE_PROMPT + "\n" + sample.question + "\n" + post
    return {"prompt": prompt, "pre_prompt": PRE_PROMPT, "question": sample.question, "options": options,
            "post_prompt": post}


def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    text = protocol.prompt_template.format(**prompt_fields(sample))
    return chat_messages(text, protocol)


def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """``score``: MCA exact match (case-insensitive) or NA MRA; unparsed scores 0. ``answered``."""
    if parsed is None:
        value = 0.0
    elif meta.get("answer_type") == "MCA":
        value = float(parsed.lower() == answer.lower())
    else:
        value = mean_relative_accuracy(float(parsed), float(answer))
    return {"score": value, "answered": float(parsed is not None)}


# -- aggregation ---------------------------------------------------------------------------------


def _clusters(recs: Sequence[Record]) -> list[str]:
    return [r.cluster if r.cluster else f"\0sample:{r.sample_id}" for r in recs]


def _subscore_fn(recs: Sequence[Record]) -> Callable[[np.ndarray], dict[str, float]]:
    """fn(item indices [M]) → task scores + overall of that resample (vectorised per-type means)."""
    codes = np.array([QUESTION_TYPES.index(r.groups["question_type"]) for r in recs], dtype=np.int64)
    values = np.array([float(r.scores["score"]) for r in recs], dtype=np.float64)
    k = len(QUESTION_TYPES)

    def fn(idx: np.ndarray) -> dict[str, float]:
        sums = np.bincount(codes[idx], weights=values[idx], minlength=k)
        counts = np.bincount(codes[idx], minlength=k)
        return subscores_from_type_means(
            {QUESTION_TYPES[j]: sums[j] / counts[j] for j in range(k) if counts[j] > 0}
        )

    return fn


def _metric(name: str, recs: Sequence[Record], key: str, stats: StatsOptions) -> MetricResult:
    fn = _subscore_fn(recs)
    clusters = _clusters(recs)
    low = high = None
    if stats.n_boot > 0:
        low, high = cluster_bootstrap_fn(len(recs), clusters, lambda idx: fn(idx)[key],
                                         n_boot=stats.n_boot, seed=stats.seed, alpha=stats.alpha)
    return MetricResult(
        name=name, value=fn(np.arange(len(recs)))[key], ci_low=low, ci_high=high, n=len(recs),
        n_clusters=len(set(clusters)), n_failed=sum(1 for r in recs if r.parsed is None or r.error),
        ci_method=ci_method(stats),
    )


def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    recs = scorable(records)
    if not recs:
        return Aggregation(metrics=(), notes=(f"no scorable records among {len(records)}",))
    for r in recs:
        if r.groups.get("question_type") not in QUESTION_TYPES or "score" not in r.scores:
            raise DataError(f"record '{r.sample_id}' lacks a known groups['question_type'] or scores['score']: "
                            "re-score the run with this task version")
    by_task: dict[str, list[Record]] = {}
    for r in recs:
        by_task.setdefault(task_of(r.groups["question_type"]), []).append(r)
    tasks = tuple(mean_task_rows(t, by_task[t], stats) for t in TASKS if t in by_task)
    notes: list[str] = []
    missing = [TASK_COLUMNS[t] for t in TASKS if t not in by_task]
    if missing:
        notes.append(f"Avg is over {len(by_task)} of 8 tasks: no records for {', '.join(missing)}")
    types = group_metrics(recs, "score", "question_type", stats, order=QUESTION_TYPES)
    metrics = (_metric("Avg", recs, "overall", stats), mean_metric("answered_rate", recs, "answered", stats))
    return Aggregation(metrics=metrics, by_group={"task": tasks, "question_type": types}, notes=tuple(notes))


def mean_task_rows(task: str, recs: Sequence[Record], stats: StatsOptions) -> MetricResult:
    """One task column: mean score (MRA or accuracy); Rel. Dir. = mean of its 3 subtype means."""
    if task == REL_DIRECTION:
        return _metric(TASK_COLUMNS[task], recs, task, stats)
    return mean_metric(TASK_COLUMNS[task], recs, "score", stats)


def _synth(out: Path, seed: int) -> None:
    from .synth import synth_vsibench

    synth_vsibench(out, seed=seed)


TASK = Task(
    name="vsibench",
    version="1.0",
    description="VSI-Bench: visual-spatial QA (Avg = macro over 8 tasks; MCA accuracy, NA MRA)",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=Protocol(fps=None, nframes=32, prompt_template=PROMPT, prompt_version="vsibench-official-default",
                      max_new_tokens=16, temperature=0.0, top_p=1.0),
    parsers=PARSERS,
    default_parser="official",
    score=score,
    aggregate=aggregate,
    primary_metric="Avg",
    primary_score="score",
    annotation_files=(PARQUET,),
    chance_level=None,
    synth=_synth,
)
