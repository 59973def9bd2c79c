"""Generated MVBench data in the official layout: ``json/<task>.json`` + ``video/<prefix>/<clip>``.

Two questions per task (40 in all), each answerable from the pixels: scenes from
:mod:`vpbench.synth.scenes` (flash counts, move order, camera motion, corner destinations,
motion types) plus a few simple object tracks drawn here (moving counts, colour and background
changes, collisions). Clipped tasks get a 0.5 s static pre-roll and ``start = 0.5``, ``end`` =
clip length. Episodic Reasoning is written as a folder of 3-fps JPEG frames (``00001.jpg`` …).
Candidates hold option *text* and ``answer`` equals one of them, as in the official files.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vpbench.synth.render import write_mp4
from vpbench.synth.scenes import COLORS, CORNERS, Canvas, make_scene, shape_mask

CANVAS = Canvas(width=96, height=64, fps=8.0, n_frames=32)
N = CANVAS.n_frames  # 4 s clips: enough for the 16 / 32 frames of the protocol presets
PRE_ROLL_S = 0.5  # static lead-in outside [start, end] on clipped tasks
BG = 100
Item = tuple[np.ndarray, str, list[str], str]  # frames [T,H,W,3], question, candidates, answer


def _draw(tracks: list[dict[str, Any]], n: int = N, bg: np.ndarray | None = None) -> np.ndarray:
    """Frames [n, H, W, 3]: each track {shape, xy [n,2], color (name or per-frame list), visible [n]}.
    ``bg`` [n, 3] is a per-frame background colour (grey when None)."""
    h, w = CANVAS.height, CANVAS.width
    frames = np.full((n, h, w, 3), BG, np.uint8)
    if bg is not None:
        frames[:] = bg[:, None, None, :]
    for tr in tracks:
        for t in range(n):
            if not tr.get("visible", np.ones(n, bool))[t]:
                continue
            color = tr["color"] if isinstance(tr["color"], str) else tr["color"][t]
            m = shape_mask(tr["shape"], tr["xy"][t, 0], tr["xy"][t, 1], 7.0, -math.pi / 2, h, w)
            frames[t][m] = COLORS[color]
    return frames


def _path(p0: tuple[float, float], p1: tuple[float, float], n: int = N, t0: int = 0, t1: int = N) -> np.ndarray:
    """[n, 2] positions: at p0 until t0, linear to p1 at t1, then at p1."""
    u = np.clip((np.arange(n) - t0) / max(1, t1 - t0), 0, 1)[:, None]
    return np.asarray(p0) + (np.asarray(p1) - np.asarray(p0)) * u


def _still(p: tuple[float, float], n: int = N) -> np.ndarray:
    return np.tile(np.asarray(p, float), (n, 1))


def _pick(rng: np.random.Generator, pool: list[str], k: int) -> list[str]:
    return [str(x) for x in rng.choice(pool, size=k, replace=False)]


def _shuffle(rng: np.random.Generator, cands: list[str]) -> list[str]:
    return [cands[i] for i in rng.permutation(len(cands))]


# -- tasks built on the scene library ----------------------------------------------------------
def _move_order(rng, canvas=CANVAS):
    return make_scene("move_order", rng, canvas)


def action_sequence(rng, i):
    s = _move_order(rng)
    names = s.facts["order"]
    return s.frames, f"Which object moved next, just after the {names[0]} had moved?", _shuffle(rng, list(names)), names[1]


def character_order(rng, i):
    s = _move_order(rng)
    names = list(s.facts["order"])
    perms = [list(p) for p in itertools.permutations(names) if list(p) != names]
    wrong = [perms[j] for j in rng.choice(len(perms), 2, replace=False)]
    cands = [", then ".join(p) for p in [names] + wrong]
    return s.frames, "In what order did the objects move?", _shuffle(rng, cands), cands[0]


def action_antonym(rng, i):
    s = _move_order(rng)
    obj = s.facts["objects"][int(rng.integers(3))]
    opposite = {"up": "down", "down": "up"}[obj["direction"]]
    right, wrong = f"Moving the {obj['name']} {obj['direction']}", f"Moving the {obj['name']} {opposite}"
    return s.frames, f"What happens to the {obj['name']} in the video?", _shuffle(rng, [right, wrong, "Not sure"]), right


def action_count(rng, i):
    k = int(rng.integers(1, 5))
    s = make_scene("flash", rng, Canvas(width=96, height=64, fps=8.0, n_frames=32), counts=(k,))
    return s.frames, "How many times does the lamp light up?", ["1", "2", "3", "4"], str(k)


def egocentric_navigation(rng, i):
    names = {"pan left": "Turn left", "pan right": "Turn right", "zoom in": "Move forward", "zoom out": "Move backward"}
    motion = str(rng.choice(list(names)))
    s = make_scene("camera", rng, CANVAS, motion=motion)
    return s.frames, "Which way does the camera move?", list(names.values()), names[motion]


def object_shuffle(rng, i):
    s = make_scene("destination", rng, CANVAS)
    cands = [f"The {c} corner" for c in CORNERS]
    return s.frames, f"Where is the {s.facts['object']} at the end of the video?", cands, f"The {s.facts['destination']} corner"


def action_prediction(rng, i):
    s = make_scene("destination", rng, CANVAS)
    f = s.facts
    cands = [f"To the {c} corner" for c in CORNERS if c != f["via"]]
    q = f"The {f['object']} first travels to the {f['via']} corner. Where does it go after that?"
    return s.frames, q, cands, f"To the {f['destination']} corner"


_MOTION_TEXT = {"bounce": "Bouncing", "spin": "Spinning", "slide": "Sliding sideways", "shrink": "Shrinking",
                "grow": "Growing"}


def fine_grained_action(rng, i):
    s = make_scene("motion_type", rng, CANVAS, motion=str(rng.choice(["bounce", "spin", "slide"])))
    return (s.frames, f"What is the {s.facts['object']} doing?", [_MOTION_TEXT[m] for m in ("bounce", "spin", "slide")],
            _MOTION_TEXT[s.facts["motion"]])


def fine_grained_pose(rng, i):
    s = make_scene("motion_type", rng, CANVAS, motion=str(rng.choice(["shrink", "grow"])))
    right = "It gets bigger" if s.facts["motion"] == "grow" else "It gets smaller"
    return s.frames, f"How does the size of the {s.facts['object']} change?", ["It gets bigger", "It gets smaller",
                                                                               "It stays the same"], right


def moving_direction(rng, i):
    s = make_scene("motion_type", rng, CANVAS, motion="slide")
    cands = ["left to right", "right to left", "top to bottom", "bottom to top"]
    return s.frames, f"In which direction does the {s.facts['object']} move?", cands, s.facts["slide_direction"]


def unexpected_action(rng, i):
    s = make_scene("motion_type", rng, CANVAS, motion="spin")
    cands = ["It spins clockwise", "It spins counterclockwise", "It does not move"]
    return s.frames, f"What surprising thing does the {s.facts['object']} do?", cands, f"It spins {s.facts['spin_direction']}"


# -- tasks drawn here --------------------------------------------------------------------------
_SPOTS = [(16.0, 16.0), (48.0, 16.0), (80.0, 16.0), (16.0, 48.0), (48.0, 48.0), (80.0, 48.0)]


def _objects(rng, k, moving):
    """k distinct-coloured squares on distinct spots (32 px apart); the first ``moving`` bob up and
    down by 8 px twice, so moving squares never touch a neighbour."""
    colors, spots = _pick(rng, list(COLORS), k), [_SPOTS[j] for j in rng.permutation(len(_SPOTS))[:k]]
    bob = np.stack([np.zeros(N), 8.0 * np.sin(np.linspace(0, 4 * math.pi, N))], axis=1)
    tracks = []
    for j, (c, p) in enumerate(zip(colors, spots)):
        tracks.append({"shape": "square", "color": c, "xy": _still(p) + (bob if j < moving else 0.0)})
    return colors, tracks


def moving_count(rng, i):
    k = int(rng.integers(1, 4))
    _, tracks = _objects(rng, 4, k)
    return _draw(tracks), "How many objects are moving?", ["1", "2", "3", "4"], str(k)


def moving_attribute(rng, i):
    colors, tracks = _objects(rng, 3, 1)
    return _draw(tracks), "What color is the moving object?", _shuffle(rng, colors), colors[0]


def object_existence(rng, i):
    colors, tracks = _objects(rng, 3, 1)
    probe = colors[0] if i % 2 == 0 else str(rng.choice([c for c in COLORS if c not in colors]))
    return _draw(tracks), f"Is there a moving {probe} object in the video?", ["yes", "no"], "yes" if i % 2 == 0 else "no"


def state_change(rng, i):
    a, b, c = _pick(rng, list(COLORS), 3)
    track = {"shape": "circle", "xy": _still((48.0, 32.0)), "color": [a] * (N // 2) + [b] * (N - N // 2)}
    return _draw([track]), f"What color does the {a} circle turn into?", _shuffle(rng, [a, b, c]), b


def scene_transition(rng, i):
    a, b, c = _pick(rng, ["red", "green", "blue", "yellow"], 3)
    bg = np.array([COLORS[a]] * (N // 2) + [COLORS[b]] * (N - N // 2), np.uint8) // 2 + 40
    cands = [f"From a {a} scene to a {b} scene", f"From a {b} scene to a {a} scene", f"From a {a} scene to a {c} scene"]
    return _draw([], bg=bg), "How does the scene change?", _shuffle(rng, cands), cands[0]


def counterfactual_inference(rng, i):
    hit = i % 2 == 0
    red = {"shape": "square", "color": "red", "xy": _path((10.0, 32.0), (38.0 if hit else 26.0, 32.0), t0=2, t1=16)}
    blue = {"shape": "square", "color": "blue",
            "xy": _path((52.0, 32.0), (86.0, 32.0), t0=16, t1=30) if hit else _path((52.0, 32.0), (86.0, 32.0), t0=2, t1=12)}
    cands = ["The blue square would stay still", "The blue square would still move"]
    return _draw([red, blue]), "What would happen if the red square were removed?", cands, cands[0 if hit else 1]


def object_interaction(rng, i):
    target = str(rng.choice(["green", "blue"]))
    spots = {"green": (80.0, 14.0), "blue": (80.0, 50.0)}
    tracks = [{"shape": "square", "color": c, "xy": _still(p)} for c, p in spots.items()]
    end = (spots[target][0] - 14, spots[target][1])
    tracks.append({"shape": "circle", "color": "red", "xy": _path((14.0, 32.0), end, t0=4, t1=26)})
    cands = ["The green square", "The blue square", "The yellow square"]
    return _draw(tracks), "Which object does the red circle touch?", cands, f"The {target} square"


def action_localization(rng, i):
    part = int(rng.integers(3))
    t0 = 2 + 10 * part
    track = {"shape": "triangle", "color": "orange", "xy": _path((20.0, 32.0), (76.0, 32.0), t0=t0, t1=t0 + 8)}
    cands = ["At the beginning of the video", "In the middle of the video", "At the end of the video"]
    return _draw([track]), "When does the orange triangle move?", cands, cands[part]


def episodic_reasoning(rng, i):
    s = _move_order(rng, Canvas(width=96, height=64, fps=3.0, n_frames=N))
    names = s.facts["order"]
    return s.frames, "Which object moved last?", _shuffle(rng, list(names)), names[2]


NATURAL_ORDER = {"action_count", "moving_count", "object_existence"}
"""Tasks whose candidates keep their natural order (numbers, yes/no); the others are shuffled."""

GENERATORS: dict[str, Callable[[np.random.Generator, int], Item]] = {
    f.__name__: f for f in (
        action_sequence, action_prediction, action_antonym, fine_grained_action, unexpected_action, object_existence,
        object_interaction, object_shuffle, moving_direction, action_localization, scene_transition, action_count,
        moving_count, moving_attribute, state_change, fine_grained_pose, character_order, egocentric_navigation,
        episodic_reasoning, counterfactual_inference)
}


def synth_mvbench(out_dir: str | Path, seed: int = 0, per_task: int = 2) -> Path:
    """Write ``per_task`` questions per task under ``out_dir`` (json/ + video/); returns ``out_dir``."""
    from PIL import Image

    from .task import TASKS

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    for task, (_, _, prefix, media, clipped) in TASKS.items():
        rows = []
        for i in range(per_task):
            frames, question, cands, answer = GENERATORS[task](rng, i)
            if task not in NATURAL_ORDER:
                cands = _shuffle(rng, cands)
            assert answer in cands, (task, answer, cands)
            row: dict[str, Any] = {"video": f"{task}_{seed}_{i}" + ("" if media == "frames" else ".mp4"),
                                   "question": question, "candidates": cands, "answer": answer}
            fps = 3.0 if media == "frames" else CANVAS.fps
            if clipped:
                pre = int(round(PRE_ROLL_S * fps))
                frames = np.concatenate([np.repeat(frames[:1], pre, axis=0), frames])
                row.update(start=PRE_ROLL_S, end=round(len(frames) / fps, 3))
            dest = out / "video" / prefix / row["video"]
            if media == "frames":
                dest.mkdir(parents=True, exist_ok=True)
                for t, img in enumerate(frames, start=1):
                    Image.fromarray(img).save(dest / f"{t:05d}.jpg", quality=95)
            else:
                write_mp4(dest, frames, fps)
            rows.append(row)
        path = out / "json" / f"{task}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return out
