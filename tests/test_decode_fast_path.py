"""The decode fast path (keyframe seeks, unsampled non-reference frames skipped, convert/resize only
the targets) returns exactly the frames of a plain sequential decode of every frame followed by the
conversion vpbench always used (``frame.to_image().resize(size, BICUBIC)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vpbench.protocol import Protocol
from vpbench.video import decode as D
from vpbench.video.sampler import plan_sampling

W, H, N, FPS = 120, 72, 96, 24  # 120x72 is not a multiple of 28: every protocol resizes


def _write(path: Path, codec: str, options: dict[str, str]) -> Path:
    import av

    rng = np.random.default_rng(5)
    texture = rng.integers(0, 256, (H + 16, 2 * W, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = options
        if codec == "mpeg4":
            s.codec_context.max_b_frames = 2
        for i in range(N):
            img = texture[8 + i % 8: 8 + i % 8 + H, 2 * i: 2 * i + W].copy()  # pans: real motion vectors
            img[(3 * i) % (H - 12):(3 * i) % (H - 12) + 12, (5 * i) % (W - 12):(5 * i) % (W - 12) + 12] = (250, 30, 0)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fastpath")
    return {
        # x264 preset medium: 3 B-frames with a reference B in the middle (b-pyramid), GOP 20
        "h264": _write(d / "h264.mp4", "libx264", {"preset": "medium", "x264-params": "keyint=20:min-keyint=20:scenecut=0"}),
        "mpeg4": _write(d / "mpeg4.mp4", "mpeg4", {"g": "16", "b": "800000"}),
    }


def _sequential(path: Path) -> list[Any]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(f.to_image(), float(f.pts * float(s.time_base))) for f in c.decode(s)]


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
@pytest.mark.parametrize("protocol", [
    Protocol(fps=1.0, min_pixels=28 * 28, max_pixels=84 * 56),
    Protocol(fps=3.0, min_pixels=28 * 28, max_pixels=112 * 84),
    Protocol(fps=None, nframes=6, min_pixels=28 * 28, max_pixels=84 * 56),
    Protocol(fps=FPS, min_pixels=28 * 28, max_pixels=56 * 56),  # every frame
], ids=["1fps", "3fps", "n6", "dense"])
def test_decode_frames_bit_identical_to_sequential_decode(clips, codec, protocol) -> None:
    from PIL import Image

    path = clips[codec]
    ref = _sequential(path)
    for start, end in [(None, None), (1.3, 3.1)]:
        got = D.decode_frames(path, protocol, start, end)
        info = D.probe(path)
        plan = plan_sampling(protocol, info.n_frames, info.fps, info.height, info.width, start, end)
        size = (plan.resized_w, plan.resized_h)
        want = np.stack([np.asarray(ref[i][0].resize(size, Image.Resampling.BICUBIC)) for i in plan.indices])
        assert got.array.dtype == np.uint8 and got.array.shape == want.shape
        assert got.array.tobytes() == want.tobytes()
        assert got.timestamps_s == tuple(ref[i][1] for i in plan.indices)


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_decode_indices_bit_identical_and_skips_nonref_frames(clips, codec, monkeypatch) -> None:
    path = clips[codec]
    ref = np.stack([np.asarray(im) for im, _ in _sequential(path)])
    decoded = {"n": 0}
    original = D._iter_decoded

    def counting(container: Any, stream: Any, wanted_pts: Any = None):
        for frame in original(container, stream, wanted_pts):
            decoded["n"] += 1
            yield frame

    monkeypatch.setattr(D, "_iter_decoded", counting)
    rng = np.random.default_rng(1)
    for indices in ([0, N - 1], [5, 17, 3, 3, 60], list(range(1, N, 2)), sorted(rng.choice(N, 12, replace=False))):
        got = D.decode_indices(path, [int(i) for i in indices])
        assert got.tobytes() == ref[list(indices)].tobytes()
    # every 4th frame of one sequential pass: the unsampled non-reference frames were never output
    decoded["n"] = 0
    every4 = list(range(0, N, 4))
    assert D.decode_indices(path, every4).tobytes() == ref[every4].tobytes()
    assert decoded["n"] < N - 4  # a full pass to frame 92 outputs 93 frames (+ reorder delay)


def test_nonref_skipping_is_limited_to_known_codecs() -> None:
    assert {"h264", "hevc", "mpeg4"} <= D.SKIP_NONREF_CODECS
    assert "vp9" not in D.SKIP_NONREF_CODECS and "av1" not in D.SKIP_NONREF_CODECS
