"""MVBench (OpenGVLab, CVPR 2024): 20 temporal tasks x 200 multiple-choice questions.

Reads the official HF dataset ``OpenGVLab/MVBench`` (main revision) unchanged: ``json/<task>.json``
(lists of ``{"video", "question", "candidates", "answer"[, "start", "end"]}``, ``answer`` = option
*text*) and the unzipped ``video/`` folder laid out as the official loader expects
(``video/<prefix>/<video>``, prefixes from ``Ask-Anything:video_chat2/mvbench.ipynb: data_list``;
``video/data0613/<prefix>/<video>`` is accepted as a fallback, as lmms-eval and VLMEvalKit do).
Five tasks are clipped to ``[start, end]`` seconds; Episodic Reasoning points at a folder of
3-fps JPEG frames (``00001.jpg`` …) rather than a video file (``meta["media"] == "frames"``,
``VideoRef.frames_fps == 3.0`` as the official loader reads them).

Ground truth: the letter of the candidate equal to ``answer`` (the notebook's loop keeps the
*last* equal candidate; lmms-eval the first; they differ only on duplicated candidates).

Sample ids: ``<task>/<video>/<h>`` with ``h`` the first 10 hex digits of sha256 over
canonical JSON ``[task, video, question]``; rows that collide get ``h`` over
``[task, video, question, candidates, answer, start, end]``; identical duplicate rows get a
``~2``, ``~3`` … suffix in file order. Cluster = the source video path (tasks share CLEVRER/STAR
clips, so one cluster can span several tasks).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.errors import DataError
from vpbench.hashing import stable_hash
from vpbench.metrics.aggregate import group_metrics, mean_metric, scorable
from vpbench.parsers.mvbench import PARSERS, strip_reasoning_tags
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, Record, Sample, VideoRef

VIDEO_DIR = "video"
FALLBACK_DIR = "data0613"
# task → (official display name, abbreviation, video prefix under video/, media type, clipped to start/end)
TASKS: dict[str, tuple[str, str, str, str, bool]] = {
    "action_sequence": ("Action Sequence", "AS", "star/Charades_v1_480/", "video", True),
    "action_prediction": ("Action Prediction", "AP", "star/Charades_v1_480/", "video", True),
    "action_antonym": ("Action Antonym", "AA", "ssv2_video/", "video", False),
    "fine_grained_action": ("Fine-grained Action", "FA", "Moments_in_Time_Raw/videos/", "video", False),
    "unexpected_action": ("Unexpected Action", "UA", "FunQA_test/test/", "video", False),
    "object_existence": ("Object Existence", "OE", "clevrer/video_validation/", "video", False),
    "object_interaction": ("Object Interaction", "OI", "star/Charades_v1_480/", "video", True),
    "object_shuffle": ("Object Shuffle", "OS", "perception/videos/", "video", False),
    "moving_direction": ("Moving Direction", "MD", "clevrer/video_validation/", "video", False),
    "action_localization": ("Action Localization", "AL", "sta/sta_video/", "video", True),
    "scene_transition": ("Scene Transition", "ST", "scene_qa/video/", "video", False),
    "action_count": ("Action Count", "AC", "perception/videos/", "video", False),
    "moving_count": ("Moving Count", "MC", "clevrer/video_validation/", "video", False),
    "moving_attribute": ("Moving Attribute", "MA", "clevrer/video_validation/", "video", False),
    "state_change": ("State Change", "SC", "perception/videos/", "video", False),
    "fine_grained_pose": ("Fine-grained Pose", "FP", "nturgbd/", "video", False),
    "character_order": ("Character Order", "CO", "perception/videos/", "video", False),
    "egocentric_navigation": ("Egocentric Navigation", "EN", "vlnqa/", "video", False),
    "episodic_reasoning": ("Episodic Reasoning", "ER", "tvqa/frames_fps3_hq/", "frames", True),
    "counterfactual_inference": ("Counterfactual Inference", "CI", "clevrer/video_validation/", "video", False),
}
"""The 20 tasks in the official (paper / notebook) order."""
FRAMES_FPS = 3.0
LETTERS = "ABCDEFGHIJ"

SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and "
    "movement of objects, and the action and pose of persons. Based on your observations, select the best "
    "option that accurately addresses the question.\n"
)
PREFILL_MARK = "<|assistant_prefill|>"
"""In a prompt template, text after this mark becomes a trailing assistant message (a prefill)."""
OFFICIAL_TEMPLATE = "Question: {question}\nOptions:\n{options}\nOnly give the best option." + PREFILL_MARK + "Best option:("
LMMS_EVAL_TEMPLATE = "Question:{question}\nOption:\n{options}\nOnly give the best option.\n"

PRESETS: dict[str, dict[str, Any]] = {
    "official": dict(nframes=16, fps=None, prompt_template=OFFICIAL_TEMPLATE, system_prompt=SYSTEM,
                     prompt_version="mvbench-askanything-notebook", max_new_tokens=100),
    "lmms_eval": dict(nframes=32, fps=None, prompt_template=LMMS_EVAL_TEMPLATE, system_prompt=None,
                      prompt_version="mvbench-lmms-eval-0.7.3", max_new_tokens=16),
}
"""Protocol presets. official: Ask-Anything notebook (16 frames, system text, "Best option:(" prefill,
100 new tokens); lmms_eval: 0.7.3 prompt, 16 new tokens, 32 frames (its Qwen2.5-VL default)."""


def protocol_preset(name: str) -> Protocol:
    """The task protocol under a named preset ("official" or "lmms_eval")."""
    if name not in PRESETS:
        raise DataError(f"mvbench: no protocol preset '{name}'; available: {', '.join(PRESETS)}")
    return dataclasses.replace(Protocol(nframes=16, fps=None), **PRESETS[name])


# -- loading -----------------------------------------------------------------------------------
def _video_rel(root: Path, prefix: str, video: str) -> str:
    rel = f"{prefix}{video}"
    if not (root / VIDEO_DIR / rel).exists() and (root / VIDEO_DIR / FALLBACK_DIR / rel).exists():
        return f"{FALLBACK_DIR}/{rel}"
    return rel


def _row_fields(row: Any, where: str) -> tuple[str, str, list[str], str]:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with video/question/candidates/answer, got {type(row).__name__}")
    missing = [k for k in ("video", "question", "candidates", "answer") if k not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}; the file must be the official MVBench json")
    cands = row["candidates"]
    if not isinstance(cands, list) or len(cands) < 2 or not all(isinstance(c, str) for c in cands):
        raise DataError(f"{where}: 'candidates' must be a list of >= 2 strings, got {cands!r}")
    if len(cands) > len(LETTERS):
        raise DataError(f"{where}: {len(cands)} candidates; at most {len(LETTERS)} are supported")
    if row["answer"] not in cands:
        raise DataError(f"{where}: answer {row['answer']!r} is not one of the candidates {cands!r}")
    return str(row["video"]), str(row["question"]), list(cands), str(row["answer"])


def _bounds(row: dict, clipped: bool, where: str) -> tuple[float | None, float | None]:
    if not clipped:
        return None, None
    try:
        start, end = float(row["start"]), float(row["end"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: this task is clipped to [start, end] but the row has no numeric "
                        f"start/end ({e})") from e
    if end <= start:
        raise DataError(f"{where}: end ({end}) must be after start ({start})")
    return start, end


def _read_json(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); re-download it from OpenGVLab/MVBench json/") from e
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
    return data


def load_samples(root: Path) -> list[Sample]:
    root = Path(root)
    missing = [f for f in ANNOTATION_FILES if not (root / f).is_file()]
    if missing:
        raise DataError(
            f"MVBench data root {root} lacks {len(missing)} annotation file(s), e.g. {missing[0]}: download "
            f"the json/ folder of the HF dataset OpenGVLab/MVBench (and unzip video/*.zip under video/), "
            f"or generate data with `vpbench synth mvbench`"
        )
    samples: list[Sample] = []
    for task, (_, _, prefix, media, clipped) in TASKS.items():
        path = root / "json" / f"{task}.json"
        rows = _read_json(path)
        keys: list[str] = []
        parsed = []
        for i, row in enumerate(rows):
            where = f"{path} [record {i}]"
            video, question, cands, answer = _row_fields(row, where)
            start, end = _bounds(row, clipped, where)
            parsed.append((video, question, cands, answer, start, end))
            keys.append(stable_hash([task, video, question], length=10))
        counts: dict[str, int] = {}
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
        seen: dict[str, int] = {}
        for (video, question, cands, answer, start, end), key in zip(parsed, keys):
            if counts[key] > 1:
                key = stable_hash([task, video, question, cands, answer, start, end], length=10)
            seen[key] = seen.get(key, 0) + 1
            suffix = f"~{seen[key]}" if seen[key] > 1 else ""
            # official notebook: the *last* candidate equal to the answer text
            gt = max(j for j, c in enumerate(cands) if c == answer)
            rel = _video_rel(root, prefix, video)
            samples.append(Sample(
                id=f"{task}/{video}/{key}{suffix}",
                task="mvbench",
                video=VideoRef(rel, start, end, frames_fps=FRAMES_FPS if media == "frames" else None),
                question=question,
                options=tuple(f"{LETTERS[j]}. {c}" for j, c in enumerate(cands)),
                answer=LETTERS[gt],
                cluster=f"{prefix}{video}",
                groups={"task": task},
                meta={"candidates": list(cands), "answer_text": answer, "media": media,
                      **({"frames_fps": FRAMES_FPS} if media == "frames" else {})},
            ))
    return samples


# -- prompt ------------------------------------------------------------------------------------
def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    """Template fields: ``{question}``, ``{options}`` ("(A) c0\\n(B) c1…"). Text after
    ``PREFILL_MARK`` becomes a trailing assistant message that the model continues."""
    cands = sample.meta.get("candidates") or [o.split(". ", 1)[-1] for o in sample.options]
    options = "\n".join(f"({LETTERS[j]}) {c}" for j, c in enumerate(cands))
    text = protocol.prompt_template.format(question=sample.question, options=options)
    user, _, prefill = text.partition(PREFILL_MARK)
    return chat_messages(user, protocol, prefill=prefill or None)


# -- scoring -----------------------------------------------------------------------------------
def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """Correct iff the answer letter is among the parsed letters ("B", or "A|B|C" from the
    quirk-compatible parser); unparsed is wrong and unanswered."""
    ok = parsed is not None and answer in parsed.split("|")
    return {"acc": float(ok), "answered": float(parsed is not None)}


def _nonempty(records: Sequence[Record]) -> list[Record]:
    """lmms-eval's denominator: records whose response is non-empty after reasoning-tag stripping."""
    return [r for r in records if strip_reasoning_tags(r.response) != ""]


def make_aggregate(exclude_empty: bool = False):
    """Avg (micro over questions, = the official Σcorrect/Σtotal) + the 20 task accuracies.

    ``exclude_empty=True`` reproduces lmms-eval's ``mvbench_aggregate_results``: empty responses
    leave the denominator of every number. The default keeps them (scored wrong) and adds the
    lmms-eval overall number as an extra row.
    """
    def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
        recs = scorable(records)
        base = _nonempty(recs) if exclude_empty else recs
        notes: list[str] = []
        if not base:
            raise DataError("mvbench: every response is empty; nothing to score with exclude_empty=True")
        metrics = [mean_metric("Avg", base, "acc", stats), mean_metric("answered_rate", recs, "answered", stats)]
        nonempty = _nonempty(recs)
        if exclude_empty:
            notes.append(f"lmms-eval denominator: {len(recs) - len(base)} empty responses excluded")
        elif nonempty:
            metrics.append(mean_metric("Avg (empty responses excluded, as lmms-eval)", nonempty, "acc", stats))
        names = {t: v[1] for t, v in TASKS.items()}
        per_task = group_metrics(base, "acc", "task", stats, names=names, order=list(TASKS))
        present = {r.groups.get("task") for r in recs}
        if len(present) < len(TASKS):
            notes.append(f"only {len(present)} of {len(TASKS)} tasks have records")
        return Aggregation(metrics=tuple(metrics), by_group={"task": per_task}, notes=tuple(notes))

    return aggregate


aggregate = make_aggregate(exclude_empty=False)
aggregate_lmms_eval = make_aggregate(exclude_empty=True)

ANNOTATION_FILES = tuple(f"json/{t}.json" for t in TASKS)


def _synth(out: Path, seed: int) -> None:
    from .synth import synth_mvbench

    synth_mvbench(out, seed)


TASK = Task(
    name="mvbench",
    version="1.0",
    description="MVBench: 20 temporal MCQ tasks (Avg + 20 task accuracies)",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=protocol_preset("official"),
    parsers=PARSERS,
    default_parser="official",
    score=score,
    aggregate=aggregate,
    primary_metric="Avg",
    annotation_files=ANNOTATION_FILES,
    video_dir=VIDEO_DIR,
    chance_level=None,
    synth=_synth,
    presets=PRESETS,
)
