"""Benchmark clips: H.264 (libx264, yuv420p, B-frames) with moving textured content, written by
PyAV so every side decodes the same bytes. ``make_clip(path, seconds, fps, w, h, keyint)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_clip(path: Path, seconds: float = 60.0, fps: int = 25, width: int = 640, height: int = 360,
              keyint: int = 120, seed: int = 0) -> Path:
    """A clip whose frames pan over a fixed random texture with a moving block (so P/B frames carry
    real motion), keyframes every ``keyint`` frames (no scene-cut keyframes), x264 preset medium."""
    import av

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height + 64, width * 2, 3), dtype=np.uint8)
    texture = ((texture.astype(np.uint16) + np.roll(texture, 1, 0) + np.roll(texture, 1, 1)) // 3).astype(np.uint8)
    n = int(round(seconds * fps))
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "23", "preset": "medium", "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"}
        for i in range(n):
            x = (i * 3) % width
            img = texture[32: 32 + height, x: x + width].copy()
            by, bx = (i * 5) % (height - 40), (i * 7) % (width - 40)
            img[by: by + 40, bx: bx + 40] = (255, 64, 0)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    tmp.replace(path)
    return path
