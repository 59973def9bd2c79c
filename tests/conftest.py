"""Shared fixtures. Tests run offline: the HF offline switches are set for the whole session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, why: str) -> None:
    """Skip a check whose external data/runtime is absent on a developer machine; under ``CI=true``
    the same absence fails the test (CI must never pass by skipping)."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{why} (CI=true: required here, not skipped)")
    pytest.skip(why)


# A hand-written MotionBench annotation file in the official layout (one row per video).
MOTIONBENCH_ROWS = [
    {"question_type": "Repetition Count", "video_type": "Synthetic", "key": "vidA",
     "qa": [{"uid": "qa1", "start": None, "end": None, "answer": "B",
             "question": "How many times does the lamp flash?\nA. 1\nB. 2\nC. 3"},
            {"uid": "qa2_1", "start": None, "end": None, "answer": "A",
             "question": "Does the lamp change colour?\nA. no\nB. yes"}],
     "video_path": "vidA.mp4", "video_info": {"duration": 2.0, "fps": 10.0, "resolution": {"width": 64, "height": 64}}},
    {"question_type": "Camera Motion", "video_type": "Synthetic", "key": "vidB",
     "qa": [{"uid": "qa3", "start": None, "end": None, "answer": "C",
             "question": "Which way does the camera pan?\nA. left\nB. up\nC. right\nD. down"}],
     "video_path": "vidB.mp4", "video_info": {"duration": 2.0, "fps": 10.0, "resolution": {"width": 64, "height": 64}}},
    {"question_type": "Action Order", "video_type": "Synthetic", "key": "vidC",
     "qa": [{"uid": "qa4", "start": None, "end": None, "answer": "A",
             "question": "Which object moves first?\nA. red\nB. green\nC. blue"},
            {"uid": "qa5", "start": None, "end": None, "answer": "NA",
             "question": "Which object moves last?\nA. red\nB. green\nC. blue"}],
     "video_path": "vidC.mp4", "video_info": {"duration": 2.0, "fps": 10.0, "resolution": {"width": 64, "height": 64}}},
]


def write_motionbench(root: Path, rows=MOTIONBENCH_ROWS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "video_info.meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def write_clip(path: Path, n_frames: int = 20, size: int = 64, fps: int = 10) -> Path:
    """A small real mp4 whose frame i is a flat grey level 10*i (frame identity is visible)."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(n_frames):
            img = np.full((size, size, 3), (10 * i) % 250, dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture
def motionbench_root(tmp_path: Path) -> Path:
    return write_motionbench(tmp_path / "motionbench")


@pytest.fixture
def motionbench_with_videos(tmp_path: Path) -> Path:
    root = write_motionbench(tmp_path / "motionbench")
    for key in ("vidA", "vidB", "vidC"):
        write_clip(root / "self-collected" / f"{key}.mp4")
    return root
