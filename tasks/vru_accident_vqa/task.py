"""VRU-Accident VQA (Kim, Abdelrahman, Abdel-Aty, ICCV 2025 W): 6,000 four-way MCQs on 1,000 crash videos.

Reads the official annotation files unchanged from a data root laid out as the official repo
(``Kimyounggun99/VRU-Accident``): ``MetaData/<SRC>/<SRC>_VQA_annotation.json`` keyed by
``"./VRU_videos/<SRC>/VRU_<n>.mp4"``, videos at ``VRU_videos/<SRC>/VRU_<n>.mp4``.

Prompt = ``question + " " + options`` verbatim (``options`` is one raw string), in a user message
``[text, video]`` (the official order for Qwen / LLaVA). Protocol: 8 frames (official DataLoader),
``max_new_tokens=10``, greedy. Score: the official ``pred.strip().upper() == GT.strip().upper()``;
an unparsed answer (None) is wrong and stays in the denominator. Reported: the six category
accuracies under the paper's column names and Average = their plain mean.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.errors import DataError
from vpbench.metrics.aggregate import group_metrics, macro_metric, mean_metric, scorable
from vpbench.parsers.vru import VQA_DEFAULT_PARSER, VQA_PARSERS
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, Record, Sample, VideoRef

NAME = "vru_accident_vqa"
SOURCES = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")
"""Official source order (the order the official evaluation concatenates them)."""
CATEGORIES: dict[str, str] = {
    "weather and light": "Weather & Light",
    "location": "Traffic Environment",
    "road type": "Road Configuration",
    "accident type": "Accident Type",
    "accident reason": "Accident Cause",
    "prevention method": "Accident Prevention Measure",
}
"""Annotation category key → the paper's column name (README "VQA Categories")."""
PROMPT = "{question} {options}"
LETTERS = ("A", "B", "C", "D")


def annotation_file(src: str) -> str:
    return f"MetaData/{src}/{src}_VQA_annotation.json"


def video_rel(key: str, src: str, where: str) -> tuple[str, str]:
    """'./VRU_videos/DoTA/VRU_1.mp4' → ('VRU_videos/DoTA/VRU_1.mp4', 'VRU_1'); DataError otherwise."""
    rel = key[2:] if key.startswith("./") else key
    parts = rel.split("/")
    if len(parts) != 3 or parts[0] != "VRU_videos" or parts[1] != src or not parts[2].startswith("VRU_"):
        raise DataError(f"{where}: video key {key!r} is not './VRU_videos/{src}/VRU_<n>[.mp4]'; "
                        "use the official MetaData files unchanged")
    stem = parts[2][:-4] if parts[2].endswith(".mp4") else parts[2]
    return f"VRU_videos/{src}/{stem}.mp4", stem


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise DataError(f"{path} not found: copy MetaData/ from the official repository "
                        "github.com/Kimyounggun99/VRU-Accident into the data root (see tasks/"
                        f"{NAME}/README.md)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); use the official file unchanged") from e
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by video path")
    return data


def split_options(text: str) -> tuple[str, ...] | None:
    """The official one-string options "A. x, B. y, C. z, D. w" as ("A. x", "B. y", "C. z", "D. w"),
    or None when the four letters are not found in order. Each letter after the first follows a
    space, comma or period ("x. B. y" and "x, B.y" occur in the official files); the prompt keeps
    the raw string (``meta["options_text"]``), the labelled texts serve baselines and keywords."""
    marks: list[tuple[int, int]] = []
    start = 0
    for letter in LETTERS:
        m = re.compile((r"^\s*" if letter == "A" else r"(?<=[\s,.])") + letter + r"\.\s*").search(text, start)
        if m is None:
            return None
        marks.append((m.start(), m.end()))
        start = m.end()
    ends = [b for b, _ in marks[1:]] + [len(text)]
    out = tuple(f"{letter}. {text[e:end].strip().rstrip(',').strip()}"
                for letter, (_, e), end in zip(LETTERS, marks, ends))
    return out if all(len(o) > 3 for o in out) else None


def load_samples(root: Path) -> list[Sample]:
    samples: list[Sample] = []
    for src in SOURCES:
        path = Path(root) / annotation_file(src)
        for index, (key, cats) in enumerate(read_json(path).items()):
            where = f"{path} [{key!r}]"
            rel, stem = video_rel(key, src, where)
            if not isinstance(cats, dict) or set(cats) != set(CATEGORIES):
                have = sorted(cats) if isinstance(cats, dict) else type(cats).__name__
                raise DataError(f"{where}: expected the six categories {list(CATEGORIES)}, got {have}")
            for cat in CATEGORIES:  # canonical category order
                item = cats[cat]
                try:
                    question, options, gt = item["question"], item["options"], item["GT"]
                except (KeyError, TypeError) as e:
                    raise DataError(f"{where}/{cat!r}: needs 'question', 'options' and 'GT' ({e})") from e
                if not all(isinstance(v, str) for v in (question, options, gt)):
                    raise DataError(f"{where}/{cat!r}: 'question', 'options' and 'GT' must be strings")
                if gt.strip().upper() not in LETTERS:
                    raise DataError(f"{where}/{cat!r}: GT {gt!r} is not one of A-D")
                labelled = split_options(options)
                if labelled is None:
                    raise DataError(f"{where}/{cat!r}: options {options!r} do not list 'A. ..', 'B. ..', 'C. ..', "
                                    f"'D. ..' in order; use the official annotation file unchanged")
                samples.append(Sample(
                    id=f"{NAME}/{src}/{stem}/{cat}", task=NAME, video=VideoRef(rel),
                    question=question, options=labelled, answer=gt,
                    cluster=f"{src}/{stem}", groups={"category": cat, "source": src},
                    meta={"options_text": options, "video_key": key, "index": index},
                ))
    return samples


def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    """User message [text, video]; text = template(question, options) — official: question + " " + options."""
    text = protocol.prompt_template.format(question=sample.question, options=sample.meta["options_text"])
    return chat_messages(text, protocol, video_first=False)  # official order for Qwen: [text, video]


def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """Official ``VQA_eval``: ``pred.strip().upper() == GT.strip().upper()``; None is wrong.

    ``answered`` = the cleaned prediction is an option letter (several official cleaners never
    return None, so "parsed" alone would count every raw reply as answered)."""
    pred = parsed.strip().upper() if parsed is not None else None
    correct = pred is not None and pred == answer.strip().upper()
    return {"acc": float(correct), "answered": float(pred in ("A", "B", "C", "D"))}


def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    recs = scorable(records)
    if not recs:
        return Aggregation(metrics=(), notes=("no scorable records",))
    cats = group_metrics(recs, "acc", "category", stats, names=CATEGORIES, order=list(CATEGORIES))
    present = {r.groups["category"] for r in recs}
    notes: list[str] = []
    if present == set(CATEGORIES):
        average = (macro_metric("Average", recs, "acc", "category", stats, expected_groups=list(CATEGORIES)),)
    else:
        average = ()
        notes.append(f"Average not reported: categories {sorted(set(CATEGORIES) - present)} have no records")
    metrics = cats + average + (mean_metric("answered_rate", recs, "answered", stats),)
    by_source = group_metrics(recs, "acc", "source", stats, order=list(SOURCES))
    return Aggregation(metrics=metrics, by_group={"source": by_source}, notes=tuple(notes))


# --- official responses → replay ------------------------------------------------------------
def official_vqa_predictions(model_dir: Path) -> dict[str, str | None]:
    """{sample_id: saved pred} from ``Model_Response/VQA/<model>/<SRC>_VQA_response.json`` (4 files).

    The saved ``pred`` is the official post-processor's output (already parsed).
    """
    out: dict[str, str | None] = {}
    for src in SOURCES:
        path = Path(model_dir) / f"{src}_VQA_response.json"
        for key, cats in read_json(path).items():
            _, stem = video_rel(key, src, f"{path} [{key!r}]")
            for cat, item in cats.items():
                if cat not in CATEGORIES or not isinstance(item, dict) or "pred" not in item:
                    raise DataError(f"{path} [{key!r}]: bad entry {cat!r}; expected {{category: {{'pred', 'GT'}}}}")
                pred = item["pred"]
                out[f"{NAME}/{src}/{stem}/{cat}"] = None if pred is None else str(pred)
    return out


def official_vqa_replay(model_dir: Path, out_file: Path) -> int:
    """Write a ``replay:FILE`` JSONL ({"sample_id", "response"}) from an official model folder.

    ``response`` is the saved (already parsed) pred; None becomes "". Score it with that model's
    own official parser (``vpbench.parsers.vru.official_vqa_parser(model)``): each is the identity
    on the values it produced (letters for the extractors; Gemini's raw text for ``gemini``),
    so the replayed run reproduces the official accuracies. Returns the number of lines.
    """
    from vpbench.models.replay import write_replay

    preds = official_vqa_predictions(model_dir)
    return write_replay(out_file, NAME, ((sid, pred or "") for sid, pred in preds.items()))


def _synth(out: Path, seed: int) -> None:
    """Generated data in the official layout (2 clips per source): see tasks/vru_accident_vqa/synth.py."""
    from .synth import synth_vru

    synth_vru(out, seed)


TASK = Task(
    name=NAME,
    version="1.1",
    description="VRU-Accident VQA: 6 categories x 1,000 crash videos, official exact-match scorer",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=Protocol(fps=None, nframes=8, prompt_template=PROMPT, prompt_version="vru-official",
                      max_new_tokens=10),
    parsers=VQA_PARSERS,
    default_parser=VQA_DEFAULT_PARSER,
    score=score,
    aggregate=aggregate,
    primary_metric="Average",
    annotation_files=tuple(annotation_file(s) for s in SOURCES),
    video_dir="",
    synth=_synth,
    chance_level=0.25,
)
