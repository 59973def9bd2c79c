"""VideoMMMU (lmms-lab): knowledge acquisition from lecture videos — Perception / Comprehension /
Adaptation tracks, plus the question-only baseline used for Δknowledge.

Data root = the HF dataset ``lmms-lab/VideoMMMU`` as downloaded, with its video archives extracted
in place (lmms-eval's ``$HF_HOME/video_mmmu`` folder): ``<Track>/test-00000-of-00001.parquet`` for
Track in Perception / Comprehension / Adaptation, videos ``<Art|Science|Humanities|Engineering|
Medicine|Business>/<id>.mp4`` and question-only clips ``question_only/<id>_image.mp4``.

Sample id = ``<Track>/<official id>`` (an official id such as ``validation_Chemistry_13`` appears
once per track); cluster = the official id (one lecture video); groups = track, discipline,
subject. Prompts, parsing and per-track scoring follow lmms-eval ``74b6d95c`` (the release used for
the paper). Protocol: 32 frames (the README's ``max_frames_num=32``), 1024 new tokens, greedy
(lmms-eval sets no temperature: the model default; vpbench fixes greedy). The Adaptation question
image is the video's LAST frame: the frame sampler must include it (uniform ``linspace(0, n-1)``
sampling as in qwen-vl-utils does).

Two tasks are defined here: ``videommmu`` (900 questions) and ``videommmu_adaptation_qonly`` (the
300 Adaptation questions shown with only their 2-second question-image clip, no lecture prompt,
2 frames — the official run uses 1 frame; 2 is the minimum ``frame_factor`` and shows the same
still image). Δknowledge comes from one run of each: :func:`delta_knowledge`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.errors import DataError
from vpbench.metrics.aggregate import group_metrics, macro_metric, mean_metric, scorable
from vpbench.metrics.videommmu import delta_knowledge, knowledge_transitions  # noqa: F401  (re-exported)
from vpbench.parsers.videommmu import API_ERROR, PARSERS, is_correct
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, Record, Sample, VideoRef

TRACKS = ("Perception", "Comprehension", "Adaptation")
PARQUET = "test-00000-of-00001.parquet"
_DISCIPLINE_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (discipline as reported by lmms-eval, video folder, subjects)
    ("Art and Design", "Art", ("Art", "Art_Theory", "Design", "Music")),
    ("Business", "Business", ("Accounting", "Economics", "Finance", "Manage", "Marketing")),
    ("Science", "Science", ("Biology", "Chemistry", "Geography", "Math", "Physics")),
    ("Health and Medicine", "Medicine", ("Basic_Medical_Science", "Clinical_Medicine",
                                         "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health")),
    ("Humanities and Social Science", "Humanities", ("History", "Literature", "Sociology", "Psychology")),
    ("Tech and Engineering", "Engineering", ("Agriculture", "Architecture_and_Engineering", "Computer_Science",
                                             "Electronics", "Energy_and_Power", "Materials",
                                             "Mechanical_Engineering")),
)
DISCIPLINES: Mapping[str, tuple[str, str]] = {s: (d, f) for d, f, subs in _DISCIPLINE_TABLE for s in subs}
"""subject → (discipline, video folder)."""

PRE_PROMPT = "You should watch and learn the video content. Then apply what you learned to "
MCQ_PROMPT = "answer the following multi-choice question. The image for this question is at the end of the video.\n"
OPEN_PROMPT = "answer the following open-ended question. The image for this question is at the end of the video.\n"
PC_POST_PROMPT = "\nPlease ignore the Quiz question in last frame of the video."
PROMPT = "{prompt}"
"""Template fields: ``prompt`` (the official text), ``question``, ``options`` (the options block)."""


def subject_of(official_id: str) -> str:
    """'validation_Art_Theory_3' → 'Art_Theory' (lmms-eval ``extract_subset_name``)."""
    split = official_id.split("_")[0]
    m = re.match(rf"^{re.escape(split)}_(.+?)_\d+$", official_id)
    if not m:
        raise ValueError(f"id {official_id!r} is not '<split>_<Subject>_<n>'")
    return m.group(1)


def options_block(options: Sequence[str]) -> str:
    """lmms-eval ``parse_options``: as-is when already 'A. ...'-prefixed, else 'A. opt' lines."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    if all(o.startswith(f"{l}.") for o, l in zip(options, letters)):
        return "\n".join(options)
    return "\n".join(f"{l}. {o}" for l, o in zip(letters, options))


def _read_track(root: Path, track: str) -> tuple[Path, list[dict[str, Any]]]:
    path = Path(root) / track / PARQUET
    if not path.exists():
        raise DataError(f"{path} not found: download the HF dataset lmms-lab/VideoMMMU (configs Perception, "
                        f"Comprehension, Adaptation) into the data root, or run `vpbench synth videommmu`")
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DataError(f"{path}: reading parquet needs pyarrow: pip install pyarrow==25.0.1") from e
    try:
        table = pq.read_table(path, columns=None)
        keep = [c for c in ("id", "question", "options", "answer", "question_type") if c in table.column_names]
        return path, table.select(keep).to_pylist()
    except Exception as e:
        raise DataError(f"{path}: not a readable parquet file ({e}); re-download it") from e


def _sample(row: Mapping[str, Any], track: str, where: str, task: str, question_only: bool) -> Sample:
    try:
        oid, question, answer = str(row["id"]), str(row["question"]), row["answer"]
    except KeyError as e:
        raise DataError(f"{where}: missing field {e}; expected id, question, options, answer") from e
    try:
        subject = subject_of(oid)
        discipline, folder = DISCIPLINES[subject]
    except (ValueError, KeyError) as e:
        raise DataError(f"{where}: cannot map id {oid!r} to a VideoMMMU subject ({e})") from e
    options = tuple(str(o) for o in (row.get("options") or ()))
    qtype = row.get("question_type")
    is_mc = qtype == "multiple-choice" or (qtype is None and len(options) > 0)
    if answer is None:
        raise DataError(f"{where}: answer is missing")
    answer = str(answer)
    if is_mc and answer not in [chr(ord("A") + i) for i in range(len(options))]:
        raise DataError(f"{where}: multiple-choice answer {answer!r} is not an option letter of {len(options)} options")
    video = f"question_only/{oid}_image.mp4" if question_only else f"{folder}/{oid}.mp4"
    return Sample(
        id=f"{track}/{oid}", task=task, video=VideoRef(video), question=question, options=options, answer=answer,
        cluster=oid, groups={"track": track, "discipline": discipline, "subject": subject},
        meta={"track": track, "question_type": None if qtype is None else str(qtype),
              "format": "mc" if is_mc else "open", "official_id": oid, "question_only": question_only},
    )


def _load(root: Path, tracks: Sequence[str], task: str, question_only: bool) -> list[Sample]:
    samples: list[Sample] = []
    seen: set[str] = set()
    for track in tracks:
        path, rows = _read_track(root, track)
        for i, row in enumerate(rows):
            where = f"{path} row {i} (id={row.get('id')!r})"
            s = _sample(row, track, where, task, question_only)
            if s.id in seen:
                raise DataError(f"{where}: duplicate id {s.id!r}")
            seen.add(s.id)
            samples.append(s)
    return samples


def load_samples(root: Path) -> list[Sample]:
    return _load(root, TRACKS, "videommmu", question_only=False)


def load_samples_qonly(root: Path) -> list[Sample]:
    return _load(root, ("Adaptation",), "videommmu_adaptation_qonly", question_only=True)


def prompt_fields(sample: Sample) -> dict[str, str]:
    """The official lmms-eval text for the sample's track (``doc_to_text_*``)."""
    block = options_block(sample.options)
    if sample.meta.get("question_only"):
        prompt = sample.question + "\n" + block                      # doc_to_text_no_preprompt
    elif sample.meta.get("track") == "Adaptation":
        if sample.meta.get("format") == "mc":
            prompt = PRE_PROMPT + MCQ_PROMPT + sample.question + "\n" + block
        else:
            prompt = PRE_PROMPT + OPEN_PROMPT + sample.question
    else:
        prompt = sample.question + "\n" + block + PC_POST_PROMPT
    return {"prompt": prompt, "question": sample.question, "options": block}


def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    text = protocol.prompt_template.format(**prompt_fields(sample))
    return chat_messages(text, protocol)


def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """``score`` (0/1, official correctness; unparsed = wrong) and ``answered``."""
    return {"score": float(is_correct(parsed, answer)), "answered": float(parsed is not None)}


def _empty_note(recs: Sequence[Record]) -> str | None:
    empty = [r for r in recs if r.response in ("", API_ERROR)]
    if not empty:
        return None
    kept = [r for r in recs if r.response not in ("", API_ERROR)]
    off = {t: [r.scores["score"] for r in kept if r.groups.get("track") == t] for t in TRACKS}
    vals = ", ".join(f"{t} {sum(v) / len(v):.4f}" for t, v in off.items() if v)
    return (f"{len(empty)} empty responses are counted wrong; the official scorer drops them ('API Error') "
            f"from the denominator, which gives: {vals}")


def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    recs = scorable(records)
    if not recs:
        return Aggregation(metrics=(), notes=(f"no scorable records among {len(records)}",))
    tracks = [t for t in TRACKS if any(r.groups.get("track") == t for r in recs)]
    metrics = []
    if len(tracks) == len(TRACKS):
        metrics.append(macro_metric("Overall", recs, "score", "track", stats, expected_groups=TRACKS))
    metrics += list(group_metrics(recs, "score", "track", stats, order=TRACKS))
    metrics.append(mean_metric("answered_rate", recs, "answered", stats))
    notes = []
    if len(tracks) != len(TRACKS):
        notes.append(f"Overall (mean of the 3 track accuracies) not computed: only {', '.join(tracks)} present")
    note = _empty_note(recs)
    if note:
        notes.append(note)
    notes.append("Δknowledge needs a videommmu_adaptation_qonly run: vpbench.metrics.videommmu.delta_knowledge")
    by_group = {"discipline": group_metrics(recs, "score", "discipline", stats),
                "subject": group_metrics(recs, "score", "subject", stats)}
    return Aggregation(metrics=tuple(metrics), by_group=by_group, notes=tuple(notes))


def aggregate_qonly(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    recs = scorable(records)
    if not recs:
        return Aggregation(metrics=(), notes=(f"no scorable records among {len(records)}",))
    metrics = (mean_metric("Adaptation (question only)", recs, "score", stats),
               mean_metric("answered_rate", recs, "answered", stats))
    note = _empty_note(recs)
    return Aggregation(metrics=metrics, by_group={"discipline": group_metrics(recs, "score", "discipline", stats)},
                       notes=(note,) if note else ())


def _synth(out: Path, seed: int) -> None:
    from .synth import synth_videommmu

    synth_videommmu(out, seed=seed)


PROTOCOL = Protocol(fps=None, nframes=32, prompt_template=PROMPT, prompt_version="videommmu-lmms-eval-74b6d95c",
                    max_new_tokens=1024, temperature=0.0)
VIDEO_DIRS = tuple(sorted({folder for _, folder in DISCIPLINES.values()}))

TASK = Task(
    name="videommmu",
    version="1.0",
    description="VideoMMMU: Perception / Comprehension / Adaptation (Overall = mean of the 3 tracks)",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=PROTOCOL,
    parsers=PARSERS,
    default_parser="official",
    score=score,
    aggregate=aggregate,
    primary_metric="Overall",
    primary_score="score",
    annotation_files=tuple(f"{t}/{PARQUET}" for t in TRACKS),
    chance_level=None,
    synth=_synth,
)

TASK_QONLY = Task(
    name="videommmu_adaptation_qonly",
    version="1.0",
    description="VideoMMMU Adaptation, question image only (the Δknowledge baseline)",
    load_samples=load_samples_qonly,
    build_messages=build_messages,
    protocol=Protocol(fps=None, nframes=2, prompt_template=PROMPT, prompt_version="videommmu-qonly-lmms-eval-74b6d95c",
                      max_new_tokens=1024, temperature=0.0),
    parsers=PARSERS,
    default_parser="official",
    score=score,
    aggregate=aggregate_qonly,
    primary_metric="Adaptation (question only)",
    primary_score="score",
    annotation_files=(f"Adaptation/{PARQUET}",),
    chance_level=None,
    synth=_synth,
    data_name="videommmu",
)
