"""Synthetic MotionBench: procedurally generated clips written in MotionBench's NATIVE format.

``synth_motionbench(out_dir)`` writes

- ``<out>/video_info.meta.jsonl``: one JSON line per video, field for field like the official
  ``data/video_info.meta.jsonl`` (``question_type`` per video row, one of the six official
  categories; ``video_type``; 32-hex ``key``; ``qa`` = [{uid, start: null, end: null, answer,
  question with inline "\\nA. ..." options}]; ``video_path`` = "<key>.mp4"; ``video_info`` with
  duration, fps, resolution{width, height}). Dev rows carry answer letters, test rows "NA".
- ``<out>/self-collected/<key>.mp4``: the clips (the official layout's ``self-collected/`` folder;
  ``public-dataset/`` is created empty, as a loader probing both folders expects it).
- ``<out>/synth_truth.json``: GENERATOR-ONLY ground truth, not part of MotionBench's format.
  A flat JSON object keyed by video key and by uid:
  ``{key: {"scene", "fps", "n_frames", "event_frames", "facts"},
     uid: {"key", "fps", "event_frames", "answer", "answer_text"}}`` where ``answer`` is the
  correct letter also for test ("NA") rows, and ``event_frames`` are the frame indices (of the
  mp4, 0-based) that show the events the question is about (used to benchmark key-frame finders).

Category → scene kind (``vpbench.synth.scenes``): Repetition Count → flash; Action Order and
Motion-related Objects → move_order; Camera Motion → camera; Location-related Motion →
destination; Motion Recognition → motion_type. Video ``i`` gets category ``i % 6`` and its own
seed ``SeedSequence(seed).spawn``-style child, so a video does not change when ``n_videos`` does.
Same seed → byte-identical jsonl/truth and identical frames.

``mcq`` (place the true option among distractors at a chosen letter) is reusable by other
benchmark generators.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vpbench.errors import ConfigError
from vpbench.synth.render import write_mp4
from vpbench.synth.scenes import CAMERA_MOTIONS, CORNERS, SHAPES, Canvas, Scene, make_scene

CATEGORIES = ("Motion Recognition", "Location-related Motion", "Camera Motion",
              "Motion-related Objects", "Action Order", "Repetition Count")
VIDEO_TYPE = "Synthetic"
LETTERS = "ABCDEF"
_UID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_CAMERA_TEXT = {"pan left": "The camera pans left", "pan right": "The camera pans right",
                "tilt up": "The camera tilts up", "tilt down": "The camera tilts down",
                "zoom in": "The camera zooms in", "zoom out": "The camera zooms out"}
_MOTION_TEXT = {"bounce": "It bounces up and down", "spin": "It spins in place",
                "slide": "It slides sideways", "shrink": "It shrinks", "grow": "It grows"}


@dataclass(frozen=True)
class QASpec:
    """A question before lettering: ``truth`` is one of ``options``; ``groups`` name event groups."""

    stem: str
    truth: str
    distractors: tuple[str, ...]
    groups: tuple[str, ...] = ()


def mcq(truth: str, distractors: Sequence[str], position: int) -> list[str]:
    """Options with ``truth`` at index ``position`` and ``distractors`` (in order) elsewhere."""
    if truth in distractors or len(set(distractors)) != len(distractors):
        raise ConfigError(f"mcq: options must be distinct, got truth={truth!r}, distractors={list(distractors)}")
    if not 0 <= position <= len(distractors):
        raise ConfigError(f"mcq: position {position} out of range for {len(distractors) + 1} options")
    opts = list(distractors)
    opts.insert(position, truth)
    return opts


def format_question(stem: str, options: Sequence[str]) -> str:
    """MotionBench inline style: ``stem\\nA. opt\\nB. opt``."""
    return stem + "".join(f"\n{LETTERS[i]}. {o}" for i, o in enumerate(options))


def _sample(rng: np.random.Generator, pool: Sequence[str], k: int) -> tuple[str, ...]:
    k = min(k, len(pool))
    return tuple(str(pool[int(i)]) for i in rng.choice(len(pool), size=k, replace=False))


def _numbers(rng: np.random.Generator, truth: int, lo: int = 1, hi: int = 6, k: int = 3) -> tuple[str, ...]:
    return _sample(rng, [str(n) for n in range(lo, hi + 1) if n != truth], k)


# -- question builders: (rng) -> (scene, [QASpec, ...]); the first QA is always kept ---------------
def _rc(rng: np.random.Generator, canvas: Canvas) -> tuple[Scene, list[QASpec]]:
    scene = make_scene("flash", rng, canvas, n_lamps=int(rng.integers(1, 3)))
    lamps = scene.facts["lamps"]
    if len(lamps) == 1:
        k = lamps[0]["count"]
        return scene, [QASpec("How many times does the lamp flash in the video?", str(k), _numbers(rng, k))]
    qas = [QASpec(f"How many times does the {d['name']} flash?", str(d["count"]),
                  _numbers(rng, d["count"]), (d["name"],)) for d in lamps]
    total = scene.facts["count"]
    qas.append(QASpec("How many flashes are there in total, counting both lamps?", str(total),
                      _numbers(rng, total, 2, 10), tuple(d["name"] for d in lamps)))
    return scene, qas


def _absent(rng: np.random.Generator, k: int) -> tuple[str, ...]:
    """0..k names of objects that are not in a move_order scene (never red, green or blue)."""
    names = [f"{c} {s}" for c in ("yellow", "magenta", "orange", "cyan") for s in SHAPES]
    return _sample(rng, names, int(rng.integers(0, k + 1)))


def _order_text(names: Sequence[str]) -> str:
    return ", then ".join(names)


def _ao(rng: np.random.Generator, canvas: Canvas) -> tuple[Scene, list[QASpec]]:
    scene = make_scene("move_order", rng, canvas)
    order = list(scene.facts["order"])
    perms = [[order[i] for i in p] for p in ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))]
    wrong = _sample(rng, [_order_text(p) for p in perms], int(rng.integers(2, 4)))
    qas = [QASpec("In what order do the shapes move?", _order_text(order), wrong),
           QASpec("Which shape moves second?", order[1], (order[0], order[2]) + _absent(rng, 1), (order[1],))]
    return scene, qas


def _mo(rng: np.random.Generator, canvas: Canvas) -> tuple[Scene, list[QASpec]]:
    scene = make_scene("move_order", rng, canvas)
    order = list(scene.facts["order"])
    by_name = {o["name"]: o for o in scene.facts["objects"]}
    qas = [QASpec("Which object is the first to move?", order[0], (order[1], order[2]) + _absent(rng, 1),
                   (order[0],)),
           QASpec("Which object is the last to move?", order[2], (order[0], order[1]) + _absent(rng, 1),
                   (order[2],))]
    ups = [n for n in order if by_name[n]["direction"] == "up"]
    if len(ups) == 1:  # only then "which object moves up" has one answer
        others = tuple(n for n in order if n != ups[0]) + _absent(rng, 1)
        qas.append(QASpec("Which object moves upward?", ups[0], others, (ups[0],)))
    return scene, qas


def _cm(rng: np.random.Generator, canvas: Canvas) -> tuple[Scene, list[QASpec]]:
    scene = make_scene("camera", rng, canvas)
    m = scene.facts["motion"]
    wrong = _sample(rng, [_CAMERA_TEXT[x] for x in CAMERA_MOTIONS if x != m], int(rng.integers(2, 5)))
    return scene, [QASpec("How does the camera move in this video?", _CAMERA_TEXT[m], wrong)]


def _lm(rng: np.random.Generator, canvas: Canvas) -> tuple[Scene, list[QASpec]]:
    scene = make_scene("destination", rng, canvas)
    f = scene.facts
    corner = {c: f"The {c} corner" for c in CORNERS}
    qas = [QASpec(f"Where does the {f['object']} end up at the end of the video?", corner[f["destination"]],
                  tuple(corner[c] for c in CORNERS if c != f["destination"])),
           QASpec(f"Toward which corner does the {f['object']} move first?", corner[f["via"]],
                  tuple(corner[c] for c in CORNERS if c != f["via"]))]
    return scene, qas


def _mr(rng: np.random.Generator, canvas: Canvas) -> tuple[Scene, list[QASpec]]:
    scene = make_scene("motion_type", rng, canvas)
    f = scene.facts
    m = f["motion"]
    wrong = _sample(rng, [t for k, t in _MOTION_TEXT.items() if k != m], int(rng.integers(2, 5)))
    qas = [QASpec(f"What motion does the {f['object']} perform?", _MOTION_TEXT[m], wrong)]
    if m == "spin":
        d = f["spin_direction"]
        qas.append(QASpec(f"In which direction does the {f['object']} rotate?", d,
                          ("counterclockwise" if d == "clockwise" else "clockwise", "It does not rotate")))
    elif m == "slide":
        d = f["slide_direction"]
        qas.append(QASpec(f"In which direction does the {f['object']} slide?", f"From {d}",
                          (f"From {'right to left' if d == 'left to right' else 'left to right'}",
                           "From top to bottom")))
    return scene, qas


BUILDERS: dict[str, Callable[[np.random.Generator, Canvas], tuple[Scene, list[QASpec]]]] = {
    "Motion Recognition": _mr, "Location-related Motion": _lm, "Camera Motion": _cm,
    "Motion-related Objects": _mo, "Action Order": _ao, "Repetition Count": _rc,
}


# -- writer ---------------------------------------------------------------------------------------
def _hex_key(rng: np.random.Generator) -> str:
    return "".join("0123456789abcdef"[int(i)] for i in rng.integers(0, 16, size=32))


def _uid(rng: np.random.Generator) -> str:
    return "".join(_UID_ALPHABET[int(i)] for i in rng.integers(0, len(_UID_ALPHABET), size=16))


def _test_rows(rng: np.random.Generator, n_videos: int, test_fraction: float) -> set[int]:
    """Test rows, taken from later category rounds first so every category keeps a dev row."""
    n_test = int(round(n_videos * test_fraction))
    later = [int(i) for i in rng.permutation(np.arange(len(CATEGORIES), n_videos))] if n_videos > 6 else []
    first = [int(i) for i in rng.permutation(min(n_videos, len(CATEGORIES)))]
    return set((later + first)[:n_test])


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def synth_motionbench(out_dir: Path, seed: int = 0, n_videos: int = 12, test_fraction: float = 0.25,
                      canvas: Canvas | None = None) -> Path:
    """Write a synthetic MotionBench under ``out_dir``; returns the jsonl path. See module docstring."""
    if n_videos < 1:
        raise ConfigError(f"synth_motionbench: n_videos must be >= 1, got {n_videos}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"synth_motionbench: test_fraction must be in [0, 1), got {test_fraction}")
    canvas = canvas or Canvas()
    out_dir = Path(out_dir)
    (out_dir / "self-collected").mkdir(parents=True, exist_ok=True)
    (out_dir / "public-dataset").mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence(seed)
    meta_rng = np.random.default_rng(root.spawn(1)[0])
    test_rows = _test_rows(meta_rng, n_videos, test_fraction)
    video_seqs = np.random.SeedSequence([seed, 1]).spawn(n_videos)
    lines: list[str] = []
    truth: dict[str, Any] = {}
    letter_cycle: list[int] = []
    for i in range(n_videos):
        rng = np.random.default_rng(video_seqs[i])
        category = CATEGORIES[i % len(CATEGORIES)]
        key = _hex_key(rng)
        scene, specs = BUILDERS[category](rng, canvas)
        specs = specs[:1] + [s for s in specs[1:] if rng.random() < 0.6]
        base_uid = _uid(rng)
        qa_rows = []
        for j, spec in enumerate(specs):
            n_opt = len(spec.distractors) + 1
            if not letter_cycle:
                letter_cycle = [int(x) for x in meta_rng.permutation(4)]
            pos = letter_cycle.pop()
            pos = pos if pos < n_opt else int(meta_rng.integers(n_opt))
            # shuffle so that the option order never reveals the truth (e.g. the move order)
            distractors = [spec.distractors[int(k)] for k in rng.permutation(len(spec.distractors))]
            options = mcq(spec.truth, distractors, pos)
            uid = base_uid if len(specs) == 1 else f"{base_uid}_{j}"
            letter = LETTERS[pos]
            qa_rows.append({"uid": uid, "start": None, "end": None,
                            "answer": "NA" if i in test_rows else letter,
                            "question": format_question(spec.stem, options)})
            groups = spec.groups or tuple(scene.event_groups)
            frames = sorted({t for g in groups for t in scene.event_groups[g]})
            truth[uid] = {"key": key, "fps": scene.fps, "event_frames": frames, "answer": letter,
                          "answer_text": spec.truth}
        write_mp4(out_dir / "self-collected" / f"{key}.mp4", scene.frames, scene.fps)
        row = {"question_type": category, "video_type": VIDEO_TYPE, "key": key, "qa": qa_rows,
               "video_path": f"{key}.mp4",
               "video_info": {"duration": scene.duration, "fps": float(scene.fps),
                              "resolution": {"width": int(scene.frames.shape[2]),
                                             "height": int(scene.frames.shape[1])}}}
        lines.append(json.dumps(row))
        truth[key] = {"scene": scene.kind, "fps": scene.fps, "n_frames": scene.n_frames,
                      "event_frames": list(scene.event_frames), "facts": dict(scene.facts)}
    jsonl = out_dir / "video_info.meta.jsonl"
    _write_text(jsonl, "".join(line + "\n" for line in lines))
    _write_text(out_dir / "synth_truth.json", json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return jsonl
