"""Generated VSI-Bench data in the native layout (``test-00000-of-00001.parquet`` + scene mp4s).

Each scene is a rectangular room seen from above: a floor of 1 m x 1 m tiles (so distances are
measurable from pixels), labelled coloured furniture footprints, and a camera that pans from left
to right across the room, so objects enter the view one after another. Every one of the 10
question types is asked once per scene with ground truth computed from the geometry (image
coordinates: x right, y down; "facing" is a direction in the floor plane seen from above).
Three scenes (one per source dataset) → 30 questions, a few seconds to generate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpbench.synth.render import write_mp4

PX_PER_M = 40
LEFT_PAD = 112          # dark area left of the room: the first frame shows (almost) no object
WINDOW_W, FRAME_H = 128, 224
N_FRAMES, FPS = 48, 8.0
CATEGORIES = {          # name: (rgb, width m, depth m)
    "chair": ((220, 40, 40), 0.5, 0.5),
    "table": ((50, 80, 235), 1.2, 0.8),
    "sofa": ((40, 170, 60), 2.0, 0.9),
    "bed": ((190, 60, 200), 2.0, 1.6),
    "lamp": ((235, 200, 30), 0.4, 0.4),
    "tv": ((40, 200, 210), 1.0, 0.3),
}
UNIQUE = ("table", "sofa", "bed", "lamp", "tv")


@dataclass(frozen=True)
class Box:
    name: str
    x: float   # left, metres from the room's left wall
    y: float   # top, metres from the room's top wall
    w: float
    d: float

    @property
    def center(self) -> np.ndarray:
        return np.array([self.x + self.w / 2, self.y + self.d / 2])


def box_distance(a: Box, b: Box) -> float:
    """Distance between the closest points of two axis-aligned footprints (metres)."""
    dx = max(0.0, max(a.x, b.x) - min(a.x + a.w, b.x + b.w))
    dy = max(0.0, max(a.y, b.y) - min(a.y + a.d, b.y + b.d))
    return math.hypot(dx, dy)


def _layout(rng: np.random.Generator, room_w: float, room_d: float) -> list[Box]:
    names = ["chair"] * int(rng.integers(1, 5)) + list(UNIQUE)
    boxes: list[Box] = []
    for name in names:
        _, w, d = CATEGORIES[name]
        for _ in range(2000):
            x = float(rng.uniform(0.1, room_w - w - 0.1))
            y = float(rng.uniform(0.1, room_d - d - 0.1))
            cand = Box(name, round(x, 2), round(y, 2), w, d)
            if all(box_distance(cand, b) >= 0.25 for b in boxes):
                boxes.append(cand)
                break
        else:
            raise RuntimeError("layout failed")  # caller retries with another room
    return boxes


def _render(boxes: list[Box], room_w: float, room_d: float) -> np.ndarray:
    """Full top-down canvas [H, W, 3] uint8 (room plus the dark left pad)."""
    from PIL import Image, ImageDraw, ImageFont

    rw, rd = int(room_w * PX_PER_M), int(room_d * PX_PER_M)
    oy = (FRAME_H - rd) // 2
    width = LEFT_PAD + rw + 24
    width += width % 2
    img = Image.new("RGB", (width, FRAME_H), (30, 30, 30))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=10)
    for i in range(int(math.ceil(room_w))):
        for j in range(int(math.ceil(room_d))):
            shade = (205, 195, 175) if (i + j) % 2 == 0 else (185, 175, 155)
            x0, y0 = LEFT_PAD + i * PX_PER_M, oy + j * PX_PER_M
            draw.rectangle([x0, y0, min(x0 + PX_PER_M, LEFT_PAD + rw) - 1, min(y0 + PX_PER_M, oy + rd) - 1], fill=shade)
    draw.rectangle([LEFT_PAD - 3, oy - 3, LEFT_PAD + rw + 2, oy + rd + 2], outline=(245, 245, 245), width=3)
    for b in boxes:
        rgb = CATEGORIES[b.name][0]
        x0, y0 = LEFT_PAD + b.x * PX_PER_M, oy + b.y * PX_PER_M
        x1, y1 = x0 + b.w * PX_PER_M - 1, y0 + b.d * PX_PER_M - 1
        if b.name == "lamp":
            draw.ellipse([x0, y0, x1, y1], fill=rgb)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=rgb)
        draw.text((x0, max(0, y0 - 11)), b.name, fill=(0, 0, 0), font=font)
    return np.asarray(img, dtype=np.uint8)


def _pan(canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames [T, FRAME_H, WINDOW_W, 3] and each frame's window left edge [T] (canvas px)."""
    x0 = np.round(np.linspace(0, canvas.shape[1] - WINDOW_W, N_FRAMES)).astype(int)
    return np.stack([canvas[:, x:x + WINDOW_W] for x in x0]), x0


def _first_frame(b: Box, x0: np.ndarray) -> int:
    left = LEFT_PAD + b.x * PX_PER_M
    return int(np.argmax(x0 + WINDOW_W > left + 2))


def _angle(f: np.ndarray, v: np.ndarray) -> float:
    """Signed angle (degrees) from facing ``f`` to ``v`` seen from above; > 0 = to the right (y down)."""
    return math.degrees(math.atan2(f[0] * v[1] - f[1] * v[0], float(f @ v)))


def _direction(a: float, kind: str) -> str | None:
    """Answer word for an angle, or None when the angle is within 15 degrees of a boundary."""
    if kind == "hard":
        if min(abs(abs(a) - 90), abs(a), 180 - abs(a)) < 15:
            return None
        return ("front-" if abs(a) < 90 else "back-") + ("right" if a > 0 else "left")
    if kind == "medium" and abs(abs(a) - 135) < 15:
        return None
    if kind == "medium" and abs(a) > 135:
        return "back"
    if abs(a) < 15 or abs(a) > 165 or (kind == "easy" and abs(abs(a) - 90) > 60):
        return None
    return "right" if a > 0 else "left"


def _options(words: list[str]) -> list[str]:
    return [f"{chr(65 + i)}. {w}" for i, w in enumerate(words)]


def _letter(words: list[str], answer: str) -> str:
    return chr(65 + words.index(answer))


def _questions(rng: np.random.Generator, boxes: list[Box], room_w: float, room_d: float, x0: np.ndarray) -> list[dict]:
    one = {b.name: b for b in boxes if b.name in UNIQUE}
    qs: list[dict] = []

    def add(qtype: str, question: str, gt: str, options: list[str] | None = None) -> None:
        qs.append({"question_type": qtype, "question": question, "ground_truth": gt, "options": options})

    n_chairs = sum(b.name == "chair" for b in boxes)
    add("object_counting", "How many chair(s) are in this room?", str(n_chairs))
    a, b = rng.choice(list(UNIQUE), size=2, replace=False)
    add("object_abs_distance", f"Measuring from the closest point of each object, what is the direct distance "
        f"between the {a} and the {b} (in meters)?", f"{box_distance(one[a], one[b]):.1f}")
    c = str(rng.choice(list(UNIQUE)))
    add("object_size_estimation", f"What is the length of the longest dimension (length, width, or height) of the "
        f"{c}, measured in centimeters?", str(int(round(max(one[c].w, one[c].d) * 100))))
    add("room_size_estimation", "What is the size of this room (in square meters)? If multiple rooms are shown, "
        "estimate the size of the combined space.", f"{room_w * room_d:.1f}")
    for target in rng.permutation(list(UNIQUE)):
        others = [n for n in UNIQUE if n != target]
        dist = sorted((box_distance(one[target], one[n]), n) for n in others)
        if dist[1][0] - dist[0][0] >= 0.3:
            words = list(rng.permutation(others))
            add("object_rel_distance", f"Measuring from the closest point of each object, which of these objects "
                f"({', '.join(words)}) is the closest to the {target}?", _letter(words, dist[0][1]), _options(words))
            break
    stems = {
        "easy": "is the {z} to my left or the right?",
        "medium": "is the {z} to my left, right, or back? An object is to my back if I would have to turn at "
                  "least 135 degrees in order to face it.",
        "hard": "is the {z} to my front-left, front-right, back-left, or back-right? The directions refer to the "
                "quadrants of a Cartesian plane (if I am standing at the origin and facing along the positive "
                "y-axis).",
    }
    choices = {"easy": ["left", "right"], "medium": ["left", "right", "back"],
               "hard": ["front-left", "front-right", "back-left", "back-right"]}
    triples = list(itertools.permutations(UNIQUE, 3))
    for kind in ("easy", "medium", "hard"):
        for i in rng.permutation(len(triples)):
            x, y, z = triples[i]
            ans = _direction(_angle(one[y].center - one[x].center, one[z].center - one[x].center), kind)
            if ans and (kind != "medium" or ans == "back" or rng.random() < 0.5):
                add(f"object_rel_direction_{kind}", f"If I am standing by the {x} and facing the {y}, "
                    + stems[kind].format(z=z), _letter(choices[kind], ans), _options(choices[kind]))
                break
    turns = ["Turn Left", "Turn Right", "Turn Back"]
    for i in rng.permutation(len(triples)):
        x, y, z = triples[i]
        a = _angle(one[y].center - one[x].center, one[z].center - one[y].center)
        if 20 < abs(a) < 120 or abs(a) > 160:
            ans = "Turn Back" if abs(a) > 160 else ("Turn Right" if a > 0 else "Turn Left")
            add("route_planning", f"You are a robot beginning at the {x} and facing the {y}. You want to navigate "
                f"to the {z}. You will perform the following actions (Note: for each [please fill in], choose "
                f"either 'turn back,' 'turn left,' or 'turn right.'): 1. Go forward until the {y} 2. [please fill "
                f"in] 3. Go forward until the {z}. You have reached the final destination.",
                _letter(turns, ans), _options(turns))
            break
    first = sorted((_first_frame(one[n], x0), n) for n in UNIQUE)
    picked = [first[0]]
    for f, n in first[1:]:
        if f - picked[-1][0] >= 2:
            picked.append((f, n))
    order = [n for _, n in picked[:4]]
    if len(order) >= 3:
        perms = [list(p) for p in itertools.permutations(order)]
        wrong = [perms[int(j)] for j in rng.permutation(len(perms)) if perms[int(j)] != order][:3]
        opts = wrong + [order]
        opts = [opts[int(j)] for j in rng.permutation(len(opts))]
        words = [", ".join(o) for o in opts]
        add("obj_appearance_order", "What will be the first-time appearance order of the following categories in "
            f"the video: {', '.join(sorted(order))}?", _letter(words, ", ".join(order)), _options(words))
    return qs


def synth_vsibench(out_dir: str | Path, seed: int = 0, n_scenes: int = 3) -> Path:
    """Write ``n_scenes`` scenes (10 questions each) under ``out_dir`` in the official layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    datasets = ("arkitscenes", "scannet", "scannetpp")
    rows: list[dict] = []
    for s in range(n_scenes):
        while True:
            room_w, room_d = float(rng.choice([4.5, 5.0, 5.5, 6.0])), float(rng.choice([3.5, 4.0, 4.5]))
            try:
                boxes = _layout(rng, room_w, room_d)
            except RuntimeError:
                continue
            frames, x0 = _pan(_render(boxes, room_w, room_d))
            qs = _questions(rng, boxes, room_w, room_d, x0)
            if len({q["question_type"] for q in qs}) == 10:
                break
        dataset, scene = datasets[s % len(datasets)], f"synth_scene_{s:04d}"
        write_mp4(out / dataset / f"{scene}.mp4", frames, FPS)
        for q in qs:
            rows.append({"id": len(rows), "dataset": dataset, "scene_name": scene, **q})
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("id", pa.int64()), ("dataset", pa.string()), ("scene_name", pa.string()),
        ("question_type", pa.string()), ("question", pa.string()), ("ground_truth", pa.string()),
        ("options", pa.list_(pa.string())),
    ]))
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "test-00000-of-00001.parquet")
    return out
