"""PyAV decoding: right frames (by colour), seek vs sequential paths, timestamps, clips, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.video import decode as D
from vpbench.video.decode import VideoInfo, decode_frames, decode_indices, probe
from vpbench.video.sampler import plan_sampling

# 64x48 frames fit smart_resize at (56, 56) under these pixel limits
SMALL = {"min_pixels": 28 * 28, "max_pixels": 56 * 56}


def make_video(
    path: Path,
    n: int = 30,
    fps: int = 30,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a 64x48 video whose frame i is solid RGB ((i % 32) * 8, (i // 32) * 8, 128)."""
    import av

    if options is None and codec == "libx264":
        options = {"g": "10", "keyint_min": "10", "bf": "2", "sc_threshold": "0"}
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if options:
            stream.options = options
        for i in range(n):
            rgb = np.zeros((48, 64, 3), np.uint8)
            rgb[..., 0], rgb[..., 1], rgb[..., 2] = (i % 32) * 8, (i // 32) * 8, 128
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def frame_ids(frames: np.ndarray) -> list[int]:
    """Recover each frame's index from its colour."""
    r = frames[..., 0].reshape(len(frames), -1).mean(axis=1)
    g = frames[..., 1].reshape(len(frames), -1).mean(axis=1)
    return [int(round(a / 8)) + 32 * int(round(b / 8)) for a, b in zip(r, g)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "x264": make_video(d / "x264.mp4"),
        "mpeg4": make_video(d / "mpeg4.mp4", codec="mpeg4", options={"b": "2000000", "g": "10"}),
        "webm": make_video(d / "vp9.webm", codec="libvpx-vp9", fmt="webm", options={"g": "10"}),
        "long": make_video(d / "long.mp4", n=300, options={"g": "30", "bf": "2", "sc_threshold": "0"}),
        "one": make_video(d / "one.mp4", n=1),
    }


class Counter:
    """Counts seeks (fresh decode iterators) and decoded frames through ``decode._iter_decoded``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seeks = 0
        self.frames = 0
        original = D._iter_decoded

        def counting(container: Any, stream: Any, wanted_pts: Any = None) -> Iterator[Any]:
            self.seeks += 1
            for frame in original(container, stream, wanted_pts):
                self.frames += 1
                yield frame

        monkeypatch.setattr(D, "_iter_decoded", counting)


def test_probe(videos: dict[str, Path]) -> None:
    assert probe(videos["x264"]) == VideoInfo(n_frames=30, fps=30.0, duration_s=1.0, width=64, height=48)
    webm = probe(videos["webm"])  # webm stores no frame count: demux count
    assert (webm.n_frames, webm.fps, webm.width, webm.height) == (30, 30.0, 64, 48)
    assert webm.duration_s == pytest.approx(1.0, abs=0.05)
    assert probe(videos["long"]).n_frames == 300


@pytest.mark.parametrize("name", ["x264", "mpeg4", "webm"])
@pytest.mark.parametrize("indices", [[0, 29], [5, 17, 3, 3, 28], list(range(30)), [29], [14, 15]])
def test_decode_indices_right_frames(videos: dict[str, Path], name: str, indices: list[int]) -> None:
    frames = decode_indices(videos[name], indices)
    assert frames.shape == (len(indices), 48, 64, 3) and frames.dtype == np.uint8
    assert frame_ids(frames) == indices


def test_sparse_sampling_seeks(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    frames = decode_indices(videos["long"], [0, 100, 199, 299])  # keyframes every 30 frames
    assert frame_ids(frames) == [0, 100, 199, 299]
    assert count.seeks == 4
    assert count.frames < 100  # a sequential pass would decode 300


def test_last_frame_seeks_to_its_gop(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    assert frame_ids(decode_indices(videos["x264"], [29])) == [29]
    assert count.seeks == 1 and count.frames <= 12  # from keyframe 20 (+ B-frame delay), not from 0


def test_dense_sampling_is_sequential(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    frames = decode_indices(videos["x264"], list(range(0, 30, 2)))
    assert frame_ids(frames) == list(range(0, 30, 2))
    # one pass from frame 0 to 28; the unsampled non-reference B-frames among them are skipped
    assert count.seeks == 1 and 15 <= count.frames < 29


def test_decode_frames_nframes(videos: dict[str, Path]) -> None:
    protocol = Protocol(fps=None, nframes=4, **SMALL)
    out = decode_frames(videos["x264"], protocol)
    assert out.array.shape == (4, 56, 56, 3) and out.array.dtype == np.uint8
    assert frame_ids(out.array) == [0, 10, 19, 29]  # linspace(0, 29, 4).round()
    assert out.timestamps_s == pytest.approx((0.0, 10 / 30, 19 / 30, 29 / 30), abs=1e-6)
    assert out.source_fps == 30.0
    assert out.sampler_fingerprint == protocol.sampler_fingerprint()


def test_decode_frames_fps_and_resize(videos: dict[str, Path]) -> None:
    # 10 s at 2 fps = 20 frames; default pixel limits upscale 48x64 to smart_resize's (280, 392)
    out = decode_frames(videos["long"], Protocol())
    assert out.array.shape == (20, 280, 392, 3)
    plan = plan_sampling(Protocol(), 300, 30.0, 48, 64)
    assert plan.indices[:4] == (0, 16, 31, 47)  # linspace(0, 299, 20): 15.7, 31.5 -> 31 (even), 47.2
    assert frame_ids(out.array) == list(plan.indices)
    assert [t * 30 for t in out.timestamps_s] == pytest.approx(plan.indices, abs=1e-4)


def test_decode_frames_clip(videos: dict[str, Path]) -> None:
    # [0.25 s, 0.75 s] -> frames ceil(7.5)=8 .. floor(22.5)=22: 15 frames -> 1 at 2 fps -> min 4
    out = decode_frames(videos["x264"], Protocol(**SMALL), start_s=0.25, end_s=0.75)
    assert frame_ids(out.array) == [8, 13, 17, 22]  # linspace(8, 22, 4) = 8, 12.67, 17.33, 22
    assert out.timestamps_s == pytest.approx((8 / 30, 13 / 30, 17 / 30, 22 / 30), abs=1e-6)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(MissingMedia, match="missing") as info:
        decode_frames(path, Protocol())
    assert str(path) in str(info.value) and "Fix:" in str(info.value)
    with pytest.raises(MissingMedia, match="missing"):
        probe(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(MissingMedia, match=r"empty file \(0 bytes\)"):
        decode_indices(path, [0])


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(MissingMedia, match="does not decode"):
        probe(path)


def test_truncated_without_index(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["x264"].read_bytes()  # moov at the end: cutting it loses the index
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MissingMedia, match="does not decode"):
        decode_frames(path, Protocol(**SMALL))


def test_truncated_faststart(tmp_path: Path) -> None:
    full = make_video(tmp_path / "fs.mp4", container_options={"movflags": "faststart"})
    data = full.read_bytes()
    path = tmp_path / "fs_cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.6)])  # header still lists 30 frames
    assert probe(path).n_frames == 30
    with pytest.raises(MissingMedia, match="truncated: the header lists 30 frames") as info:
        decode_indices(path, [0, 29])
    assert str(path) in str(info.value)


def test_too_few_frames(videos: dict[str, Path]) -> None:
    with pytest.raises(MissingMedia, match="too short"):
        decode_frames(videos["one"], Protocol(**SMALL))
    with pytest.raises(MissingMedia, match="too short"):
        decode_frames(videos["x264"], Protocol(fps=None, nframes=32, **SMALL))
    with pytest.raises(MissingMedia, match="too short: frame 30"):
        decode_indices(videos["x264"], [0, 30])


# -- preflight (vpbench.video.check) ---------------------------------------------------------------
def test_check_video_ok(videos: dict[str, Path]) -> None:
    from vpbench.video.check import check_video

    for name in ("x264", "mpeg4", "webm", "long"):
        assert check_video(videos[name]) is None, name
    assert check_video(videos["long"], 2.0, 5.0, protocol=Protocol()) is None


def test_check_video_problems(videos: dict[str, Path], tmp_path: Path) -> None:
    from vpbench.video.check import check_video

    assert check_video(tmp_path / "absent.mp4") == "missing"
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert check_video(tmp_path / "empty.mp4") == "empty file (0 bytes)"
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 500)
    assert check_video(tmp_path / "junk.mp4").startswith("does not decode: ")
    assert check_video(videos["one"]) == "too short: 1 frame(s) in the clip, need >= 2"
    assert check_video(videos["x264"], 0.5, 0.51).startswith("too short: invalid clip range")
    nframes32 = Protocol(fps=None, nframes=32)
    assert check_video(videos["x264"], protocol=nframes32).startswith("too short: clip too short")
    assert check_video(videos["long"], protocol=nframes32) is None


def test_check_video_truncated_needs_decode(tmp_path: Path) -> None:
    from vpbench.video.check import check_video

    data = make_video(tmp_path / "fs.mp4", container_options={"movflags": "faststart"}).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert check_video(cut, decode=False) is None  # the header alone looks fine
    assert check_video(cut).startswith("does not decode")


def test_check_videos_parallel(videos: dict[str, Path], tmp_path: Path) -> None:
    from vpbench.video.check import check_videos

    absent = tmp_path / "absent.mp4"
    items = [videos["x264"], absent, (videos["long"], 1.0, 1.02), (videos["long"], 1.0, 5.0), videos["webm"], absent]
    problems = check_videos(items, workers=2)
    assert set(problems) == {absent, (videos["long"], 1.0, 1.02)}
    assert problems[absent] == "missing"
    assert problems[(videos["long"], 1.0, 1.02)].startswith("too short")
