"""Generated Video-MME data in the official layout: ``videomme/test-00000-of-00001.parquet`` + ``data/``.

Two videos per duration class (short / medium / long, scaled down to 4 / 6 / 8 s) with three
questions each, as in the real set. Videos alternate between two scene kinds of
:mod:`vpbench.synth.scenes` and every question is answerable from the pixels:

- ``move_order`` (three shapes that move once each, in turn): which moves first (Temporal
  Reasoning), which way a given shape moves (Action Recognition), how many shapes (Counting).
- ``flash`` (a left and a right lamp): how many flashes in total (Counting), which lamp flashes
  more often (Spatial Perception), the lamp colour when lit (Attribute Perception).

Options carry the official ``"A. "`` prefix and a final period; ``answer`` is the letter. ``url``
holds a ``synthetic://`` marker rather than an invented YouTube address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vpbench.hashing import stable_hash
from vpbench.synth.render import write_mp4
from vpbench.synth.scenes import Canvas, make_scene

FPS = 8.0
FRAMES = {"short": 32, "medium": 48, "long": 64}  # >= the 32 frames of the protocol
DOMAINS = [("Knowledge", "Technology"), ("Life Record", "Daily Life"), ("Sports Competition", "Other Sports"),
           ("Artistic Performance", "Magic Show"), ("Film & Television", "Animation"), ("Multilingual", "Multilingual")]
LETTERS = "ABCD"


def _mcq(rng: np.random.Generator, right: str, wrong: list[str]) -> tuple[list[str], str]:
    """Four options "A. x." with ``right`` at a random position; returns (options, answer letter)."""
    texts = [right] + [w for w in wrong if w != right][:3]
    order = rng.permutation(len(texts))
    options = [f"{LETTERS[j]}. {texts[k]}." for j, k in enumerate(order)]
    return options, LETTERS[int(np.nonzero(order == 0)[0][0])]


def _move_order_questions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[tuple[str, str, list, str]]]:
    s = make_scene("move_order", rng, Canvas(width=96, height=64, fps=FPS, n_frames=n))
    names = list(s.facts["order"])
    obj = s.facts["objects"][int(rng.integers(3))]
    qs = []
    opts, ans = _mcq(rng, names[0].capitalize(), [x.capitalize() for x in names[1:]] + ["None of them moves"])
    qs.append(("Temporal Reasoning", "Which object starts moving first?", opts, ans))
    opts, ans = _mcq(rng, obj["direction"].capitalize(), ["Up", "Down", "Left", "Right"])
    qs.append(("Action Recognition", f"In which direction does the {obj['name']} move?", opts, ans))
    opts, ans = _mcq(rng, "3", ["2", "4", "5"])
    qs.append(("Counting Problem", "How many coloured shapes are there in the video?", opts, ans))
    return s.frames, qs


def _flash_questions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[tuple[str, str, list, str]]]:
    a = int(rng.integers(1, 5))
    b = int(rng.choice([k for k in range(1, 5) if k != a]))
    s = make_scene("flash", rng, Canvas(width=96, height=64, fps=FPS, n_frames=n), counts=(a, b))
    total = a + b
    qs = []
    opts, ans = _mcq(rng, str(total), [str(total + d) for d in (-2, -1, 1, 2) if total + d > 0])
    qs.append(("Counting Problem", "How many flashes are there in total, counting both lamps?", opts, ans))
    opts, ans = _mcq(rng, "The left lamp" if a > b else "The right lamp",
                     ["The left lamp", "The right lamp", "Both flash equally often", "Neither lamp flashes"])
    qs.append(("Spatial Perception", "Which lamp flashes more times?", opts, ans))
    opts, ans = _mcq(rng, "Yellow", ["Red", "Blue", "Green"])
    qs.append(("Attribute Perception", "What colour is a lamp when it lights up?", opts, ans))
    return s.frames, qs


def synth_videomme(out_dir: str | Path, seed: int = 0, per_duration: int = 2) -> Path:
    """Write ``per_duration`` videos x 3 questions per duration class under ``out_dir``."""
    import pandas as pd

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    k = 0
    for duration, n in FRAMES.items():
        for i in range(per_duration):
            k += 1
            video_id = f"{k:03d}"
            vid = "s" + stable_hash(["videomme-synth", seed, video_id], length=10)
            frames, qs = (_move_order_questions if i % 2 == 0 else _flash_questions)(rng, n)
            write_mp4(out / "data" / f"{vid}.mp4", frames, FPS)
            domain, sub = DOMAINS[int(rng.integers(len(DOMAINS)))]
            for j, (task_type, question, options, answer) in enumerate(qs, start=1):
                rows.append({"video_id": video_id, "duration": duration, "domain": domain, "sub_category": sub,
                             "url": f"synthetic://videomme/{vid}", "videoID": vid, "question_id": f"{video_id}-{j}",
                             "task_type": task_type, "question": question, "options": options, "answer": answer})
    path = out / "videomme" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return out
