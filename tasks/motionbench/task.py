"""MotionBench (THUDM / zai-org, CVPR 2025): fine-grained motion multiple choice.

Reads the official ``video_info.meta.jsonl`` unchanged: one line per video with its
``question_type`` and a list of QAs whose options are inline in the question text. Test-split
answers are the literal "NA": those samples are *unscorable* (kept for ``vpbench export``), never
wrong. Reported: Dev-AVG (micro over dev questions) and the six category columns, all computed
on the dev split (the paper's category columns come from the hidden test split).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.errors import DataError
from vpbench.metrics.aggregate import group_metrics, mean_metric, scorable
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, Record, Sample, VideoRef

from .parse import PARSERS

META_FILE = "video_info.meta.jsonl"
VIDEO_DIRS = ("self-collected", "public-dataset")
CATEGORIES = {
    "Motion Recognition": "MR",
    "Location-related Motion": "LM",
    "Camera Motion": "CM",
    "Motion-related Objects": "MO",
    "Action Order": "AO",
    "Repetition Count": "RC",
}
_OPTION_BLOCK = re.compile(r"(^|\n)\s*([A-F])[.):][ \t]*(.*?)\s*(?=(\n\s*[A-F][.):]\s)|$)", re.S)

PROMPT = "{stem}\n{options}\nAnswer with only the option letter (A, B, C, D, E, or F)."


def split_question(question: str) -> tuple[str, tuple[str, ...]]:
    """'stem\\nA. x\\nB. y' → ('stem', ('A. x', 'B. y')), whitespace normalised (lmms-eval rule)."""
    first = re.search(r"(^|\n)\s*[A-F][.):]\s", question)
    stem = question[: first.start()] if first else question
    options = tuple(
        f"{m.group(2)}. {' '.join(m.group(3).split())}" for m in _OPTION_BLOCK.finditer(question[len(stem):])
    )
    return " ".join(stem.split()), options


def _video_path(root: Path, rel: str) -> str:
    from vpbench.validation import path_escape_problem

    if path_escape_problem(rel):  # refused by validation with its message; never probed on disk
        return rel
    for d in VIDEO_DIRS:
        if (root / d / rel).exists():
            return f"{d}/{rel}"
    return f"{VIDEO_DIRS[0]}/{rel}"


def load_samples(root: Path) -> list[Sample]:
    path = Path(root) / META_FILE
    if not path.exists():
        raise DataError(
            f"{path} not found: download MotionBench's {META_FILE} (HF dataset THUDM/MotionBench, "
            f"folder MotionBench/) into the data root, or generate data with `vpbench synth motionbench`"
        )
    samples: list[Sample] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
            qtype, key, qas, video = row["question_type"], row["key"], row["qa"], row["video_path"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"{where}: not a MotionBench video row ({e}); the file must be the official "
                            f"video_info.meta.jsonl, one JSON object per line") from e
        if qtype not in CATEGORIES:
            raise DataError(f"{where}: unknown question_type {qtype!r}; expected one of {list(CATEGORIES)}")
        if not isinstance(video, str) or not video.strip():
            raise DataError(f"{where}: video_path must be a non-empty string, got {video!r}; fix the annotation file")
        if not isinstance(qas, list) or not all(isinstance(qa, dict) for qa in qas):
            raise DataError(f"{where}: 'qa' must be a list of objects (one per question), got "
                            f"{type(qas).__name__}; fix the annotation file")
        rel = _video_path(Path(root), video)
        for qa in qas:
            if not isinstance(qa.get("question"), str):
                raise DataError(f"{where}: QA {qa.get('uid')!r}: 'question' must be a string; fix the annotation file")
            uid = str(qa.get("uid", ""))
            if not uid or uid in seen:
                raise DataError(f"{where}: QA uid {uid!r} is missing or duplicated")
            seen.add(uid)
            answer = qa.get("answer")
            stem, options = split_question(str(qa.get("question", "")))
            if not options:
                raise DataError(f"{where}: QA {uid} has no inline options ('A. ...' lines) in its question")
            letters = [o.split(".", 1)[0] for o in options]
            if answer != "NA" and answer not in letters:
                raise DataError(f"{where}: QA {uid} has answer {answer!r}, which is neither an option letter "
                                f"{letters} nor \"NA\" (hidden test answer); fix the annotation file")
            samples.append(Sample(
                id=uid, task="motionbench",
                video=VideoRef(rel, qa.get("start"), qa.get("end")),
                question=str(qa["question"]), options=options,
                answer=None if answer == "NA" else str(answer),
                cluster=str(key),
                groups={"question_type": CATEGORIES[qtype], "video_type": str(row.get("video_type", ""))},
                meta={"split": "test" if answer == "NA" else "dev"},
            ))
    return samples


def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    stem, options = split_question(sample.question)
    text = protocol.prompt_template.format(stem=stem, options="\n".join(options), question=sample.question).strip()
    return chat_messages(text, protocol)


def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """Official: exact, case-sensitive equality with the answer letter; unparsed is wrong."""
    return {"acc": float(parsed is not None and parsed == answer), "answered": float(parsed is not None)}


def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    dev = scorable(records)
    n_test = sum(1 for r in records if r.answer is None)
    notes = []
    if n_test:
        notes.append(f"{n_test} test-split samples have hidden answers: submit with `vpbench export`")
    if not dev:
        return Aggregation(metrics=(), notes=("no dev-split samples: nothing to score locally", *notes))
    metrics = (mean_metric("Dev-AVG", dev, "acc", stats), mean_metric("answered_rate", dev, "answered", stats))
    cats = group_metrics(dev, "acc", "question_type", stats, order=list(CATEGORIES.values()))
    notes.insert(0, "category columns are dev-split accuracies (the paper's come from the hidden test split)")
    return Aggregation(metrics=metrics, by_group={"question_type (dev)": cats}, notes=tuple(notes))


def export_submission(records: Sequence[Record]) -> dict[str, str]:
    """The leaderboard's ``{uid: letter}`` file, built as the official ``construct_answer`` does:
    ``polish_answer`` on each raw response, whatever parser the run used. Covers dev and test."""
    from .parse import polish_answer

    return {r.sample_id: (polish_answer(r.response) or "") for r in sorted(records, key=lambda r: r.sample_id)}


def _synth(out: Path, seed: int) -> None:
    from vpbench.synth.motionbench import synth_motionbench

    synth_motionbench(out, seed=seed)


TASK = Task(
    name="motionbench",
    version="1.0",
    description="MotionBench dev: fine-grained motion MCQ (Dev-AVG + MR/LM/CM/MO/AO/RC)",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=Protocol(fps=1.0, prompt_template=PROMPT, prompt_version="motionbench-lmms-eval-post-prompt",
                      max_new_tokens=64),
    parsers=PARSERS,
    default_parser="official",
    score=score,
    aggregate=aggregate,
    primary_metric="Dev-AVG",
    annotation_files=(META_FILE,),
    chance_level=None,
    synth=_synth,
    export=export_submission,
)
