"""Videos stored as folders of frame images (MVBench Episodic Reasoning: 3-fps ``00001.jpg`` …):
natural order, Qwen sampling by fps / nframes, clip bounds, errors, preflight, frame cache, and an
MVBench run over synth data with a frame-consuming backend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vpbench.errors import MissingMedia
from vpbench.protocol import Protocol
from vpbench.video.cache import FrameCache
from vpbench.video.check import check_video, check_videos
from vpbench.video.decode import decode_frames, decode_indices
from vpbench.video.folder import list_frame_files, probe_folder

SMALL = {"min_pixels": 28 * 28, "max_pixels": 56 * 56}
NFRAMES4 = Protocol(fps=None, nframes=4, **SMALL)


def write_frames(folder: Path, n: int, *, size: tuple[int, int] = (84, 56), ext: str = "jpg", first: int = 1) -> Path:
    """``n`` flat images ``{first:05d}.{ext}`` …; image i has red 8*i (its index), green 255-8*i, blue 128."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = np.empty((size[1], size[0], 3), np.uint8)
        rgb[...] = (8 * i, 255 - 8 * i, 128)
        Image.fromarray(rgb).save(folder / f"{i + first:05d}.{ext}", quality=95)
    return folder


def ids(array: np.ndarray) -> list[int]:
    """Image index encoded in the red channel of each frame [T,H,W,3] (JPEG may shift a level)."""
    return [round(float(f[..., 0].mean()) / 8) for f in array]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return write_frames(tmp_path / "clip", 30)  # 10 s at 3 fps


# -- reading ---------------------------------------------------------------------------------------
def test_natural_order_and_image_filter(tmp_path: Path) -> None:
    from PIL import Image

    d = tmp_path / "mixed"
    d.mkdir()
    for value, name in [(10, "frame10.jpg"), (2, "frame2.PNG"), (1, "frame1.jpeg"), (9, "frame9.jpg")]:
        Image.fromarray(np.full((28, 28, 3), 8 * value, np.uint8)).save(d / name, quality=95)
    (d / "notes.txt").write_text("not a frame")
    (d / ".frame0.jpg").write_bytes(b"hidden")
    assert [p.name for p in list_frame_files(d)] == ["frame1.jpeg", "frame2.PNG", "frame9.jpg", "frame10.jpg"]
    assert ids(decode_indices(d, [3, 0, 1, 2])) == [10, 1, 2, 9]


def test_nframes_sampling_picks_linspace_frames(folder: Path) -> None:
    out = decode_frames(folder, NFRAMES4, frames_fps=3.0)
    # torch.linspace(0, 29, 4) = [0, 9.667, 19.333, 29] → rounded [0, 10, 19, 29]
    assert ids(out.array) == [0, 10, 19, 29]
    assert out.timestamps_s == (0.0, 10 / 3, 19 / 3, 29 / 3)
    # smart_resize(56, 84) under max 56*56 px: beta = sqrt(4704/3136); h = floor(45.7/28)*28, w = floor(68.6/28)*28
    assert out.array.shape == (4, 28, 56, 3) and out.array.dtype == np.uint8
    assert out.source_fps == 3.0 and out.sample_fps == pytest.approx(4 / 30 * 3)
    assert out.sampler_fingerprint == NFRAMES4.sampler_fingerprint()


def test_fps_sampling_matches_hand_and_video_file(folder: Path, tmp_path: Path) -> None:
    from conftest import write_clip

    protocol = Protocol(fps=1.0, **SMALL)
    out = decode_frames(folder, protocol, frames_fps=3.0)
    # 30 images / 3 fps * 1 fps = 10 frames; linspace(0, 29, 10) rounded by hand:
    expected = [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]
    assert ids(out.array) == expected
    assert out.timestamps_s == tuple(i / 3 for i in expected)
    # the same frames, as a 3-fps video file, sample the same indices and times
    video = decode_frames(write_clip(tmp_path / "same.mp4", n_frames=30, size=64, fps=3), protocol)
    assert video.timestamps_s == pytest.approx(out.timestamps_s)


def test_clip_bounds_apply_as_for_videos(folder: Path) -> None:
    out = decode_frames(folder, NFRAMES4, 2.0, 8.0, frames_fps=3.0)
    # start frame ceil(2*3)=6, end frame floor(8*3)=24 → linspace(6, 24, 4) = [6, 12, 18, 24]
    assert ids(out.array) == [6, 12, 18, 24]
    assert out.timestamps_s == (2.0, 4.0, 6.0, 8.0)
    assert out.sample_fps == pytest.approx(4 / 19 * 3)


def test_probe_folder(folder: Path) -> None:
    info = probe_folder(folder, 3.0)
    assert (info.n_frames, info.fps, info.duration_s, info.width, info.height) == (30, 3.0, 10.0, 84, 56)


# -- errors ----------------------------------------------------------------------------------------
def test_folder_without_fps_is_missing_media_with_fix(folder: Path) -> None:
    with pytest.raises(MissingMedia, match=r"no frame rate.*Fix: give the VideoRef its frames_fps"):
        decode_frames(folder, NFRAMES4)
    with pytest.raises(MissingMedia, match="frames_fps must be a positive number"):
        decode_frames(folder, NFRAMES4, frames_fps=0.0)


def test_decode_errors(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingMedia, match=r"folder has no frame images \(\.jpg/\.jpeg/\.png\)"):
        decode_frames(tmp_path / "empty", NFRAMES4, frames_fps=3.0)
    with pytest.raises(MissingMedia, match="missing folder"):
        decode_frames(tmp_path / "absent", NFRAMES4, frames_fps=3.0)
    with pytest.raises(MissingMedia, match="clip too short"):
        decode_frames(write_frames(tmp_path / "three", 3), NFRAMES4, frames_fps=3.0)
    (folder / "00011.jpg").write_bytes(b"not a jpeg")  # index 10 is sampled by nframes=4
    with pytest.raises(MissingMedia, match="unreadable image 00011.jpg"):
        decode_frames(folder, NFRAMES4, frames_fps=3.0)
    odd = write_frames(tmp_path / "odd", 30)
    write_frames(tmp_path / "odd_big", 1, size=(100, 56), first=20)
    os.replace(tmp_path / "odd_big" / "00020.jpg", odd / "00020.jpg")  # index 19, sampled
    with pytest.raises(MissingMedia, match="frame sizes differ: 00020.jpg is 100x56"):
        decode_frames(odd, NFRAMES4, frames_fps=3.0)


# -- preflight -------------------------------------------------------------------------------------
def test_check_folder_problems(tmp_path: Path, folder: Path) -> None:
    assert check_video(folder, frames_fps=3.0) is None
    assert check_video(folder, 2.0, 8.0, frames_fps=3.0, protocol=NFRAMES4) is None
    assert check_video(folder).startswith("no frames_fps for a folder of frame images")
    assert check_video(tmp_path / "absent", frames_fps=3.0) == "missing folder"
    (tmp_path / "empty").mkdir()
    assert check_video(tmp_path / "empty", frames_fps=3.0) == "folder has no frame images (.jpg/.jpeg/.png)"
    assert check_video(folder / "00001.jpg", frames_fps=3.0).startswith("not a folder of frame images")
    short = write_frames(tmp_path / "short", 3)
    assert check_video(short, frames_fps=3.0, protocol=NFRAMES4).startswith("too short: clip too short")
    blank = write_frames(tmp_path / "blank", 5)
    (blank / "00002.jpg").write_bytes(b"")
    assert check_video(blank, frames_fps=3.0) == "unreadable image 00002.jpg: empty file (0 bytes)"
    junk = write_frames(tmp_path / "junk", 5)
    (junk / "00003.jpg").write_bytes(b"junk bytes")
    assert check_video(junk, frames_fps=3.0).startswith("unreadable image 00003.jpg: ")


def test_check_truncated_last_frame_needs_decode(tmp_path: Path) -> None:
    from PIL import Image

    cut = write_frames(tmp_path / "cut", 6)
    last = cut / "00006.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    Image.fromarray(noise).save(last, quality=95)  # mostly entropy-coded data after the header
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # header intact, data cut
    assert check_video(cut, frames_fps=3.0, decode=False) is None
    assert check_video(cut, frames_fps=3.0).startswith("unreadable image 00006.jpg: ")


def test_check_videos_takes_fps_items(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    items = [(folder, None, None, 3.0), (tmp_path / "empty", None, None, 3.0), folder]
    problems = check_videos(items, workers=2)
    assert set(problems) == {items[1], items[2]}
    assert problems[items[1]] == "folder has no frame images (.jpg/.jpeg/.png)"
    assert problems[items[2]].startswith("no frames_fps")


def test_preflight_maps_folder_problems_to_samples(tmp_path: Path) -> None:
    from vpbench.engine.preflight import check_media
    from vpbench.registry import get_task
    from vpbench.types import Sample, VideoRef

    task = get_task("mvbench")
    root = tmp_path / "root"
    write_frames(root / task.video_dir / "ok", 6)
    (root / task.video_dir / "empty").mkdir(parents=True)
    samples = [Sample("a", "mvbench", VideoRef("ok", frames_fps=3.0), "q"),
               Sample("b", "mvbench", VideoRef("empty", frames_fps=3.0), "q"),
               Sample("c", "mvbench", VideoRef("ok"), "q"),  # a folder without its rate
               Sample("d", "mvbench", VideoRef("gone", 0.0, 1.0, frames_fps=3.0), "q")]
    problems = check_media(task, samples, root).problems
    assert set(problems) == {"b", "c", "d"}
    assert problems["b"].endswith("empty: folder has no frame images (.jpg/.jpeg/.png)")
    assert "no frames_fps" in problems["c"] and problems["d"].endswith("gone: missing folder")


# -- frame cache -----------------------------------------------------------------------------------
def test_frame_cache_folder_identity(tmp_path: Path, folder: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    first = cache.get_or_decode(folder, NFRAMES4, frames_fps=3.0)
    again = cache.get_or_decode(folder, NFRAMES4, frames_fps=3.0)
    assert (cache.hits, cache.misses) == (1, 1)
    assert np.array_equal(first.array, again.array) and first.timestamps_s == again.timestamps_s
    assert ids(again.array) == [0, 10, 19, 29]
    # another rate is another entry (different sampling)
    cache.get_or_decode(folder, NFRAMES4, frames_fps=6.0)
    assert cache.misses == 2
    # replacing a sampled image (new content, new size/mtime) misses and decodes the new pixels
    write_frames(tmp_path / "swap", 1, first=11)
    src = tmp_path / "swap" / "00011.jpg"
    os.utime(src, ns=(1, 1))
    os.replace(src, folder / "00011.jpg")  # index 10 now holds image 0's colour
    changed = cache.get_or_decode(folder, NFRAMES4, frames_fps=3.0)
    assert cache.misses == 3 and ids(changed.array) == [0, 0, 19, 29]
    # a new image changes the listing (and the sampling): miss
    write_frames(tmp_path / "extra", 1, first=31)
    os.replace(tmp_path / "extra" / "00031.jpg", folder / "00031.jpg")
    cache.get_or_decode(folder, NFRAMES4, frames_fps=3.0)
    assert cache.misses == 4 and cache.hits == 1
    with pytest.raises(MissingMedia, match="no frame rate"):
        cache.get_or_decode(folder, NFRAMES4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingMedia, match="folder has no frame images"):
        cache.get_or_decode(tmp_path / "empty", NFRAMES4, frames_fps=3.0)


# -- MVBench end to end ----------------------------------------------------------------------------
def test_mvbench_run_with_frames_backend_needs_no_allow_missing(tmp_path: Path, monkeypatch) -> None:
    import vpbench.api as api
    from vpbench.api import RunConfig, evaluate
    from vpbench.models.dummy import DummyBackend
    from vpbench.registry import get_task

    task = get_task("mvbench")
    root = tmp_path / "mvbench"
    task.synth(root, 0)
    er = [s for s in task.load_samples(root) if s.groups["task"] == "episodic_reasoning"]
    assert er and all(s.video.frames_fps == 3.0 and (root / "video" / s.video.path).is_dir() for s in er)

    backend = DummyBackend("first", needs_frames=True)
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: backend)
    cfg = RunConfig(model="dummy:first", tasks=("mvbench",), output=tmp_path / "out",
                    data_roots={"mvbench": root}, frame_cache=tmp_path / "frames")
    res = evaluate(cfg, echo=lambda s: None)["mvbench"]
    assert res.counts["n_excluded"] == 0 and res.counts["n_failed"] == 0 and not res.partial
    assert res.counts["n_evaluated"] == 40

    import json

    records = [json.loads(line) for line in (tmp_path / "out" / "mvbench" / "records.jsonl").read_text().splitlines()]
    er_recs = [r for r in records if r["groups"]["task"] == "episodic_reasoning"]
    assert len(er_recs) == len(er)
    for r, s in zip(sorted(er_recs, key=lambda r: r["sample_id"]), sorted(er, key=lambda s: s.id)):
        n_images = len(list_frame_files(root / "video" / s.video.path))
        start = int(np.ceil(s.video.start_s * 3))
        end = min(int(np.floor(s.video.end_s * 3)), n_images - 1)
        expected = np.rint(np.linspace(start, end, 16).astype(np.float32)).astype(int) / 3  # official: 16 frames
        assert r["error"] is None
        assert r["frame_timestamps_s"] == pytest.approx(expected.tolist(), abs=1e-4)
