"""Video-MME without subtitles (CVPR 2025): 900 videos x 3 questions, short / medium / long.

Reads the official HF dataset ``lmms-lab/Video-MME`` unchanged: ``videomme/test-00000-of-00001.parquet``
(columns ``video_id, duration, domain, sub_category, url, videoID, question_id, task_type,
question, options, answer``; ``options`` already carry the ``"A. "`` prefix, ``answer`` is a
letter) and the unzipped ``videos_chunked_XX.zip`` files under ``data/<videoID>.mp4``
(``.MP4`` and ``.mkv`` are tried too, as lmms-eval does).

Sample id = the official ``question_id`` ("001-1"); cluster = ``videoID`` (lmms-eval's
``cluster_key``); groups: duration, domain, sub_category, task_type.

Reported: Overall and Short / Medium / Long (micro over questions, unanswered kept in the
denominator as in lmms-eval), plus the official ``eval_your_results.py`` overall, whose
denominator is only the questions where an answer letter was extracted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.errors import DataError
from vpbench.metrics.aggregate import group_metrics, mean_metric, scorable
from vpbench.parsers.videomme import PARSERS
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, Record, Sample, VideoRef

PARQUET = "videomme/test-00000-of-00001.parquet"
VIDEO_DIR = "data"
VIDEO_EXTS = (".mp4", ".MP4", ".mkv")
COLUMNS = ("video_id", "duration", "domain", "sub_category", "videoID", "question_id", "task_type",
           "question", "options", "answer")
DURATIONS = {"short": "Short", "medium": "Medium", "long": "Long"}
DOMAINS = ("Knowledge", "Film & Television", "Sports Competition", "Artistic Performance", "Life Record",
           "Multilingual")
TASK_TYPES = ("Temporal Perception", "Spatial Perception", "Attribute Perception", "Action Recognition",
              "Object Recognition", "OCR Problems", "Counting Problem", "Temporal Reasoning", "Spatial Reasoning",
              "Action Reasoning", "Object Reasoning", "Information Synopsis")

OFFICIAL_TEMPLATE = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n{question}\n{options}\nThe best answer is:"
)
LMMS_EVAL_TEMPLATE = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n{question}\n{options}\n"
    "\nAnswer with the option's letter from the given choices directly."
)
PRESETS: dict[str, dict[str, Any]] = {
    "official": dict(prompt_template=OFFICIAL_TEMPLATE, prompt_version="videomme-official-frames"),
    "lmms_eval": dict(prompt_template=LMMS_EVAL_TEMPLATE, prompt_version="videomme-lmms-eval-0.7.3-default"),
}
"""Prompt presets (both: 32 uniform frames = lmms-eval's Qwen2.5-VL ``max_num_frames`` default,
16 new tokens, greedy). official = the frames-only template quoted in lmms-eval's utils.py."""


def protocol_preset(name: str) -> Protocol:
    if name not in PRESETS:
        raise DataError(f"videomme: no protocol preset '{name}'; available: {', '.join(PRESETS)}")
    return Protocol(nframes=32, fps=None, max_new_tokens=16, **PRESETS[name])


# -- loading -----------------------------------------------------------------------------------
def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pandas as pd

        df = pd.read_parquet(path)
    except ImportError as e:
        raise DataError(f"{path}: reading parquet needs pyarrow; install it with "
                        f"`pip install -c constraints.txt pyarrow==25.0.1` ({e})") from e
    except Exception as e:  # pyarrow raises ArrowInvalid & co on a corrupt file
        raise DataError(f"{path}: not a readable parquet file ({e}); re-download it from lmms-lab/Video-MME") from e
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the official Video-MME parquet "
                        f"with columns {list(COLUMNS)}")
    return df.to_dict(orient="records")


def _video_rel(root: Path, video_id: str) -> str:
    for ext in VIDEO_EXTS:
        if (root / VIDEO_DIR / f"{video_id}{ext}").exists():
            return f"{video_id}{ext}"
    return f"{video_id}.mp4"


def load_samples(root: Path) -> list[Sample]:
    root = Path(root)
    path = root / PARQUET
    if not path.is_file():
        raise DataError(f"{path} not found: download videomme/test-00000-of-00001.parquet of the HF dataset "
                        f"lmms-lab/Video-MME (and unzip videos_chunked_*.zip into {root / VIDEO_DIR}), or "
                        f"generate data with `vpbench synth videomme`")
    samples: list[Sample] = []
    seen: set[str] = set()
    for i, row in enumerate(_read_parquet(path)):
        qid = str(row["question_id"])
        where = f"{path} [row {i}, question_id {qid!r}]"
        if not qid or qid in seen:
            raise DataError(f"{where}: question_id is empty or duplicated; ids must be unique")
        seen.add(qid)
        duration = str(row["duration"])
        if duration not in DURATIONS:
            raise DataError(f"{where}: duration {duration!r} is not one of {list(DURATIONS)}")
        options = tuple(str(o) for o in list(row["options"]))
        answer = str(row["answer"]).strip()
        if len(answer) != 1 or not ("A" <= answer <= "Z") or ord(answer) - 65 >= len(options):
            raise DataError(f"{where}: answer {answer!r} is not the letter of one of the {len(options)} options")
        vid = str(row["videoID"])
        samples.append(Sample(
            id=qid, task="videomme",
            video=VideoRef(_video_rel(root, vid)),
            question=str(row["question"]), options=options, answer=answer,
            cluster=vid,
            groups={"duration": duration, "domain": str(row["domain"]),
                    "sub_category": str(row["sub_category"]), "task_type": str(row["task_type"])},
            meta={"video_id": str(row["video_id"]), "videoID": vid, "url": str(row.get("url", ""))},
        ))
    return samples


def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    """Template fields: ``{question}``, ``{options}`` (the official "A. …" lines, one per line)."""
    text = protocol.prompt_template.format(question=sample.question, options="\n".join(sample.options))
    return chat_messages(text, protocol)


def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """Official: ``extraction == answer``; lmms-eval lower-cases both (same result for letters)."""
    return {"acc": float(parsed is not None and parsed.lower() == answer.lower()),
            "answered": float(parsed is not None)}


def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    recs = scorable(records)
    metrics = [mean_metric("Overall", recs, "acc", stats), mean_metric("answered_rate", recs, "answered", stats)]
    answered = [r for r in recs if r.parsed is not None]
    notes: list[str] = []
    if answered:
        metrics.append(mean_metric("Overall (official: answered only)", answered, "acc", stats))
    else:
        notes.append("no response yielded an answer letter: the official answered-only overall is undefined")
    by_group = {
        "duration": group_metrics(recs, "acc", "duration", stats, names=DURATIONS, order=list(DURATIONS)),
        "domain": group_metrics(recs, "acc", "domain", stats, order=DOMAINS),
        "task_type": group_metrics(recs, "acc", "task_type", stats, order=TASK_TYPES),
        "sub_category": group_metrics(recs, "acc", "sub_category", stats),
    }
    return Aggregation(metrics=tuple(metrics), by_group=by_group, notes=tuple(notes))


def _synth(out: Path, seed: int) -> None:
    from .synth import synth_videomme

    synth_videomme(out, seed)


TASK = Task(
    name="videomme",
    version="1.0",
    description="Video-MME w/o subtitles (Overall + Short/Medium/Long)",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=protocol_preset("official"),
    parsers=PARSERS,
    default_parser="official",
    score=score,
    aggregate=aggregate,
    primary_metric="Overall",
    annotation_files=(PARQUET,),
    video_dir=VIDEO_DIR,
    chance_level=0.25,
    synth=_synth,
    presets=PRESETS,
)
