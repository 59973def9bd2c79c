"""Generated VideoMMMU data in the native layout (per-track parquet files + lecture mp4s).

Each "lecture" is a slide video (text and shapes drawn with PIL): a title slide, a rule slide
with a worked example ("area = width x height; 3 x 4 = 12"), a slide with k coloured circles, and,
as the very last frame, the Adaptation question image (as in the official videos). Per lecture:
Perception asks for k, Comprehension applies the rule to new numbers given in the question, and
Adaptation applies it to the numbers shown in the question image (one lecture's Adaptation
question is open-ended, as 20 of the official 300 are). ``question_only/<id>_image.mp4`` holds a
2-second clip of the question image. Perception / Comprehension parquet files carry no
``question_type`` column (as in the official dump); Adaptation carries it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from vpbench.synth.render import write_mp4

W, H, FPS, HOLD = 256, 192, 2.0, 4
# (official-style id, topic, rule text, symbol, function)
LECTURES: tuple[tuple[str, str, str, str, Callable[[int, int], int]], ...] = (
    ("dev_Math_1", "Area of rectangles", "area = width x height", "x", lambda a, b: a * b),
    ("validation_Physics_2", "Total distance", "distance = speed x time", "x", lambda a, b: a * b),
    ("test_Accounting_3", "Profit", "profit = revenue - cost", "-", lambda a, b: a - b),
    ("new_Computer_Science_4", "Adding registers", "sum = a + b", "+", lambda a, b: a + b),
)
COLORS = {"red": (220, 40, 40), "blue": (50, 80, 235), "green": (40, 170, 60)}


def _slide(lines: list[str], circles: tuple[int, tuple[int, int, int]] | None = None) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (W, H), (250, 250, 245))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=16)
    for i, line in enumerate(lines):
        draw.text((12, 12 + 24 * i), line, fill=(10, 10, 10), font=font)
    if circles:
        k, rgb = circles
        for j in range(k):
            cx, cy = 30 + (j % 5) * 46, 100 + (j // 5) * 46
            draw.ellipse([cx - 16, cy - 16, cx + 16, cy + 16], fill=rgb)
    return np.asarray(img, dtype=np.uint8)


def _options(rng: np.random.Generator, value: int) -> tuple[list[str], str]:
    """10 distinct integer options containing ``value``; returns (options, answer letter)."""
    pool = sorted({value + d for d in range(-12, 13) if d != 0 and value + d > 0})
    opts = [value] + [int(x) for x in rng.choice(pool, size=9, replace=False)]
    opts = [opts[int(i)] for i in rng.permutation(10)]
    return [str(o) for o in opts], chr(ord("A") + opts.index(value))


def synth_videommmu(out_dir: str | Path, seed: int = 0) -> Path:
    """Write 4 lectures (12 questions, one open) under ``out_dir`` in the official layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .task import DISCIPLINES, subject_of

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {"Perception": [], "Comprehension": [], "Adaptation": []}
    for n, (oid, topic, rule, sym, fn) in enumerate(LECTURES):
        color = list(COLORS)[n % len(COLORS)]
        k = int(rng.integers(2, 10))
        ex = (int(rng.integers(2, 6)), int(rng.integers(1, 6)))
        quiz = (int(rng.integers(6, 10)), int(rng.integers(2, 6)))
        quiz_img = _slide(["Quiz <image 1>", f"a = {quiz[0]}", f"b = {quiz[1]}", "(use the lecture's rule)"])
        frames = [_slide([f"Lecture: {topic}"])] * HOLD
        frames += [_slide(["Rule:", rule, "Example:", f"{ex[0]} {sym} {ex[1]} = {fn(*ex)}"])] * HOLD
        frames += [_slide([f"This slide shows {color} circles"], (k, COLORS[color]))] * HOLD
        frames += [quiz_img]
        folder = DISCIPLINES[subject_of(oid)][1]
        write_mp4(out / folder / f"{oid}.mp4", np.stack(frames), FPS)
        write_mp4(out / "question_only" / f"{oid}_image.mp4", np.stack([quiz_img] * int(2 * FPS)), FPS)

        opts, ans = _options(rng, k)
        rows["Perception"].append({"id": oid, "question": f"How many {color} circles are shown in the lecture video?",
                                   "options": opts, "answer": ans})
        comp = (int(rng.integers(6, 12)), int(rng.integers(1, 6)))
        opts, ans = _options(rng, fn(*comp))
        rows["Comprehension"].append({"id": oid, "question": f"Using the rule taught in the lecture ({topic.lower()}), "
                                      f"what is the result for a = {comp[0]} and b = {comp[1]}?",
                                      "options": opts, "answer": ans})
        question = "<image 1> Apply the lecture's rule to the values a and b shown in the image. What is the result?"
        if n == 1:
            rows["Adaptation"].append({"id": oid, "question": question, "options": [], "answer": str(fn(*quiz)),
                                       "question_type": "open"})
        else:
            opts, ans = _options(rng, fn(*quiz))
            rows["Adaptation"].append({"id": oid, "question": question, "options": opts, "answer": ans,
                                       "question_type": "multiple-choice"})
    base = [("id", pa.string()), ("question", pa.string()), ("options", pa.list_(pa.string())), ("answer", pa.string())]
    for track, track_rows in rows.items():
        fields = base + ([("question_type", pa.string())] if track == "Adaptation" else [])
        (out / track).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(track_rows, schema=pa.schema(fields)),
                       out / track / "test-00000-of-00001.parquet")
    return out
