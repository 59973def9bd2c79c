"""Craft inputs: the clips to annotate, from a generated MotionBench folder, a folder of videos, or a JSONL
file of existing annotations.

``motionbench`` (``vpbench.synth.motionbench`` layout, or the official one): ``<root>/video_info.meta.jsonl``,
videos under ``<root>/self-collected/`` or ``<root>/public-dataset/``; optional ``<root>/synth_truth.json``
supplies scene facts (for the template annotator), the letters of test ("NA") rows and the event frames
(``key_segments`` for sparsification). One item per video row, id = the row's ``key``.

``videos``: every file under ``root`` with a video suffix (sorted, recursive), id = the relative path without
suffix ('/' → '__'). With ``annotations`` (JSONL) the items are the annotation lines instead, one per line::

    {"video": "clips/a.mp4",            # required; relative to root
     "id": "a",                          # optional (default: from the video path)
     "start": 1.0, "end": 4.0,           # optional clip range in seconds
     "caption": "...",                   # optional existing caption
     "qa": [{"question": "...", "answer": "...", "answer_type": "choice|number|open", "options": [...]}],
     "context": "label: ride_bike",      # optional text given to the LLM annotator
     "transient": true,                  # optional: sparsify this clip
     "key_segments": [[10, 14]]}         # optional half-open source-frame ranges of the key events

A line that is not valid JSON or breaks this schema becomes an item with ``error`` set (reported in
``rejected.jsonl``, never fatal).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from vpbench.craft.annotate import Annotation, QAItem
from vpbench.errors import ConfigError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")
_OPTION = re.compile(r"^([A-Z])\.\s*(.*)$")
_ITEM_KEYS = ("video", "id", "start", "end", "caption", "qa", "context", "transient", "key_segments")
_QA_KEYS = ("question", "answer", "answer_type", "options")


@dataclass(frozen=True)
class CraftItem:
    """One clip to craft. ``error`` (code, message) marks a bad input record."""

    id: str
    video: Path | None
    start: float | None = None
    end: float | None = None
    transient: bool = False
    context: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    existing: Annotation | None = None
    key_segments: tuple[tuple[int, int], ...] | None = None
    error: tuple[str, str] | None = None


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "item"


def split_options(question: str) -> tuple[str, tuple[str, ...]]:
    """MotionBench inline options: ``"stem\\nA. x\\nB. y"`` → ``("stem", ("x", "y"))``."""
    stem, opts = [], []
    for line in question.splitlines():
        m = _OPTION.match(line.strip())
        if m and m.group(1) == chr(ord("A") + len(opts)):
            opts.append(m.group(2).strip())
        elif not opts:
            stem.append(line)
    return " ".join(s.strip() for s in stem if s.strip()), tuple(opts)


def runs(frames: list[int]) -> tuple[tuple[int, int], ...]:
    """Sorted frame indices → half-open runs of consecutive frames: [3, 4, 9] → ((3, 5), (9, 10))."""
    out: list[list[int]] = []
    for t in sorted(set(frames)):
        if out and t == out[-1][1]:
            out[-1][1] = t + 1
        else:
            out.append([t, t + 1])
    return tuple((a, b) for a, b in out)


def _bad(item_id: str, code: str, message: str) -> CraftItem:
    return CraftItem(id=item_id, video=None, error=(code, message))


def iter_motionbench(root: Path, transient_categories: tuple[str, ...]) -> Iterator[CraftItem]:
    meta = root / "video_info.meta.jsonl"
    if not meta.is_file():
        raise ConfigError(f"input.root {root}: no video_info.meta.jsonl; is this a MotionBench folder?")
    truth_path = root / "synth_truth.json"
    truth: dict[str, Any] = json.loads(truth_path.read_text(encoding="utf-8")) if truth_path.is_file() else {}
    for n, text in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        where = f"{meta}:{n}"
        try:
            row = json.loads(text)
            key, qa_rows, vpath = row["key"], row["qa"], row["video_path"]
            category = row.get("question_type", "")
            if not isinstance(key, str) or not key or not isinstance(qa_rows, list):
                raise TypeError("'key' must be a non-empty string and 'qa' a list")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            yield _bad(f"line{n}", "bad_record", f"{where}: not a MotionBench video row ({type(e).__name__}: {e})")
            continue
        video = next((root / d / vpath for d in ("self-collected", "public-dataset") if (root / d / vpath).is_file()),
                     root / "self-collected" / vpath)
        t = truth.get(key, {})
        qas = []
        for j, q in enumerate(qa_rows):
            if not isinstance(q, dict) or "question" not in q:
                continue
            stem, opts = split_options(str(q["question"]))
            uid = str(q.get("uid", f"{key}_{j}"))
            letter = q.get("answer", "NA")
            if letter in (None, "NA"):
                letter = truth.get(uid, {}).get("answer", "NA")
            qas.append(QAItem(question=stem, answer=str(letter), answer_type="choice", options=opts, uid=uid,
                              answer_text=str(truth.get(uid, {}).get("answer_text", ""))))
        events = t.get("event_frames")
        yield CraftItem(
            id=key, video=video, transient=category in transient_categories, context=f"category: {category}",
            facts={**t.get("facts", {}), "fps": t.get("fps"), "category": category},
            existing=Annotation(video_id=key, caption=None, qa=tuple(qas), source="motionbench"),
            key_segments=runs(events) if events else None,
        )


def _parse_qa(q: Any, j: int, item_id: str) -> QAItem:
    if not isinstance(q, dict) or "question" not in q or "answer" not in q:
        raise TypeError(f"qa[{j}] must be an object with 'question' and 'answer'")
    for k in q:
        if k not in _QA_KEYS:
            raise TypeError(f"qa[{j}] has unknown key {k!r} (known: {', '.join(_QA_KEYS)})")
    opts = q.get("options") or []
    if not isinstance(opts, list):
        raise TypeError(f"qa[{j}].options must be a list")
    atype = q.get("answer_type") or ("choice" if opts else "open")
    return QAItem(question=str(q["question"]), answer=str(q["answer"]), answer_type=str(atype),
                  options=tuple(str(o) for o in opts), uid=f"{item_id}_qa{j}")


def _annotation_item(obj: Any, root: Path, n: int, where: str) -> CraftItem:
    if not isinstance(obj, dict):
        raise TypeError(f"expected a JSON object, got {type(obj).__name__}")
    for k in obj:
        if k not in _ITEM_KEYS:
            raise TypeError(f"unknown key {k!r} (known: {', '.join(_ITEM_KEYS)})")
    if not isinstance(obj.get("video"), str) or not obj["video"]:
        raise TypeError("'video' must be a non-empty path string")
    rel = Path(obj["video"])
    item_id = str(obj.get("id") or safe_id(str(rel.with_suffix(""))).replace("/", "__"))
    for k in ("start", "end"):
        if obj.get(k) is not None and (isinstance(obj[k], bool) or not isinstance(obj[k], (int, float))):
            raise TypeError(f"{k!r} must be seconds or null")
    segs = obj.get("key_segments")
    if segs is not None:
        if not isinstance(segs, list) or not all(isinstance(s, list) and len(s) == 2
                                                 and all(isinstance(v, int) for v in s) for s in segs):
            raise TypeError("'key_segments' must be a list of [start, end) frame pairs")
        segs = tuple((int(a), int(b)) for a, b in segs)
    qa = obj.get("qa") or []
    if not isinstance(qa, list):
        raise TypeError("'qa' must be a list")
    caption = obj.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise TypeError("'caption' must be a string")
    return CraftItem(
        id=item_id, video=rel if rel.is_absolute() else root / rel, start=obj.get("start"), end=obj.get("end"),
        transient=bool(obj.get("transient", False)), context=str(obj.get("context") or ""),
        existing=Annotation(video_id=item_id, caption=caption,
                            qa=tuple(_parse_qa(q, j, item_id) for j, q in enumerate(qa)), source="existing"),
        key_segments=segs,
    )


def iter_videos(root: Path, annotations: Path | None) -> Iterator[CraftItem]:
    if not root.is_dir():
        raise ConfigError(f"input.root {root} is not a directory")
    if annotations is None:
        for p in sorted(q for q in root.rglob("*") if q.suffix.lower() in VIDEO_SUFFIXES and q.is_file()):
            rel = p.relative_to(root).with_suffix("")
            yield CraftItem(id=safe_id(str(rel).replace("/", "__")), video=p)
        return
    if not annotations.is_file():
        raise ConfigError(f"input.annotations {annotations} not found")
    for n, text in enumerate(annotations.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        where = f"{annotations}:{n}"
        try:
            yield _annotation_item(json.loads(text), root, n, where)
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            yield _bad(f"line{n}", "bad_record",
                       f"{where}: {e}; fix the annotation line (schema: vpbench/craft/inputs.py)")
