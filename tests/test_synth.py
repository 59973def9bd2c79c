"""Synthetic MotionBench: native format, determinism, decodability and answerability from pixels.

The answerability checks decode each mp4 with PyAV and recompute every answer (dev AND test rows;
test answers come from the generator-only synth_truth.json) with simple image analysis that never
reads the generator's facts.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vpbench.errors import ConfigError, DataError
from vpbench.synth import render
from vpbench.synth.motionbench import CATEGORIES, mcq, synth_motionbench
from vpbench.synth.render import read_mp4, write_mp4
from vpbench.synth.scenes import SCENES, Canvas, make_scene

ROW_KEYS = ["question_type", "video_type", "key", "qa", "video_path", "video_info"]
QA_KEYS = ["uid", "start", "end", "answer", "question"]
# lmms-eval's option splitter (lmms_eval/tasks/motionbench/utils.py: _OPTION_BLOCK_PATTERN)
OPTION_BLOCK = re.compile(r"(^|\n)\s*([A-F])[.):]\s*(.*?)\s*(?=(\n\s*[A-F][.):]\s)|$)", re.S)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mb")
    synth_motionbench(out, seed=0, n_videos=12)
    return out


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "video_info.meta.jsonl").read_text().splitlines()]


def split_question(q: str) -> tuple[str, list[str]]:
    lines = q.split("\n")
    opts = []
    for i, line in enumerate(lines[1:]):
        assert line.startswith(f"{'ABCDEF'[i]}. "), line
        opts.append(line[3:])
    return lines[0], opts


# -- format -----------------------------------------------------------------------------------------
def test_native_format(bench: Path) -> None:
    rows = rows_of(bench)
    assert len(rows) == 12
    assert (bench / "public-dataset").is_dir()
    uids, n_na, n_dev, suffixed, plain = [], 0, 0, 0, 0
    dev_cats = set()
    for row in rows:
        assert list(row) == ROW_KEYS
        assert row["question_type"] in CATEGORIES and isinstance(row["video_type"], str)
        assert re.fullmatch(r"[0-9a-f]{32}", row["key"])
        assert row["video_path"] == f"{row['key']}.mp4"
        assert (bench / "self-collected" / row["video_path"]).is_file()
        info = row["video_info"]
        assert list(info) == ["duration", "fps", "resolution"]
        assert isinstance(info["duration"], float) and isinstance(info["fps"], float)
        assert list(info["resolution"]) == ["width", "height"]
        assert all(isinstance(v, int) and v % 2 == 0 for v in info["resolution"].values())
        assert 1 <= len(row["qa"]) <= 3
        for qa in row["qa"]:
            assert list(qa) == QA_KEYS and qa["start"] is None and qa["end"] is None
            assert re.fullmatch(r"[A-Za-z0-9]{16}(_\d+)?", qa["uid"])
            suffixed += "_" in qa["uid"]
            plain += "_" not in qa["uid"]
            stem, opts = split_question(qa["question"])
            assert stem.endswith("?") and 3 <= len(opts) <= 5 and len(set(opts)) == len(opts)
            parsed = [(m.group(2), m.group(3)) for m in OPTION_BLOCK.finditer(qa["question"])]
            assert parsed == [("ABCDEF"[i], o) for i, o in enumerate(opts)]
            if qa["answer"] == "NA":
                n_na += 1
            else:
                assert qa["answer"] in "ABCDEF"[: len(opts)]
                n_dev += 1
                dev_cats.add(row["question_type"])
            uids.append(qa["uid"])
        # split is per video row: a row is all dev or all test
        assert len({qa["answer"] == "NA" for qa in row["qa"]}) == 1
    assert set(r["question_type"] for r in rows) == set(CATEGORIES) == dev_cats
    assert len(uids) == len(set(uids)) and n_dev > 0 and n_na > 0
    assert sum(r["qa"][0]["answer"] == "NA" for r in rows) == 3  # round(12 * 0.25) test videos
    assert suffixed > 0 and plain > 0
    assert any(len(r["qa"]) > 1 for r in rows)


def test_truth_file(bench: Path) -> None:
    truth = json.loads((bench / "synth_truth.json").read_text())
    letters = Counter()
    for row in rows_of(bench):
        vt = truth[row["key"]]
        n = vt["n_frames"]
        assert vt["fps"] == row["video_info"]["fps"] and math.isclose(n / vt["fps"], row["video_info"]["duration"])
        assert vt["event_frames"] and all(0 < t < n for t in vt["event_frames"])
        for qa in row["qa"]:
            qt = truth[qa["uid"]]
            assert qt["key"] == row["key"]
            assert set(qt["event_frames"]) <= set(vt["event_frames"]) and qt["event_frames"]
            _, opts = split_question(qa["question"])
            assert opts["ABCDEF".index(qt["answer"])] == qt["answer_text"]
            if qa["answer"] != "NA":
                assert qa["answer"] == qt["answer"]
            letters[qt["answer"]] += 1
    total = sum(letters.values())
    assert set("ABCD") <= set(letters) and max(letters.values()) <= 0.5 * total, letters


def test_mcq() -> None:
    assert mcq("b", ["a", "c"], 1) == ["a", "b", "c"]
    with pytest.raises(ConfigError):
        mcq("a", ["a", "c"], 0)
    with pytest.raises(ConfigError):
        mcq("b", ["a"], 2)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        synth_motionbench(tmp_path, n_videos=0)
    with pytest.raises(ConfigError):
        synth_motionbench(tmp_path, test_fraction=1.0)
    with pytest.raises(ConfigError):
        make_scene("nope", np.random.default_rng(0))
    with pytest.raises(ConfigError):
        make_scene("camera", np.random.default_rng(0), motion="dolly")
    with pytest.raises(ConfigError):
        Canvas(width=127)


# -- determinism ----------------------------------------------------------------------------------------
def test_deterministic(bench: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synth_motionbench(again, seed=0, n_videos=12)
    for name in ("video_info.meta.jsonl", "synth_truth.json"):
        assert (again / name).read_bytes() == (bench / name).read_bytes()
    for row in rows_of(bench)[:6]:
        a, _ = read_mp4(bench / "self-collected" / row["video_path"])
        b, _ = read_mp4(again / "self-collected" / row["video_path"])
        assert np.array_equal(a, b)
    other = tmp_path / "other"
    synth_motionbench(other, seed=1, n_videos=2)
    assert (other / "video_info.meta.jsonl").read_bytes() != (bench / "video_info.meta.jsonl").read_bytes()
    # a video does not depend on how many videos are generated
    short = tmp_path / "short"
    synth_motionbench(short, seed=0, n_videos=2, test_fraction=0.0)
    assert [r["key"] for r in rows_of(short)] == [r["key"] for r in rows_of(bench)[:2]]


@pytest.mark.parametrize("kind", sorted(SCENES))
def test_event_frames_are_exactly_the_changing_frames(kind: str) -> None:
    for seed in range(4):
        scene = make_scene(kind, np.random.default_rng(seed))
        changed = {t for t in range(1, scene.n_frames) if np.any(scene.frames[t] != scene.frames[t - 1])}
        events = set(scene.event_frames)
        if kind == "flash":  # events = every lit frame; pixels change where any lamp switches
            lit = [scene.frames[t].max() == 255 for t in range(scene.n_frames)]
            assert events == {t for t in range(scene.n_frames) if lit[t]}
            assert {t for t in changed if lit[t] and not lit[t - 1]} == {t for t in events if not lit[t - 1]}
            if len(scene.facts["lamps"]) == 1:
                assert changed == {t for t in range(1, scene.n_frames) if lit[t] != lit[t - 1]}
        else:
            assert events == changed, (kind, seed, sorted(events ^ changed))


# -- mp4 writer ----------------------------------------------------------------------------------------------
def test_write_mp4_checks_and_atomicity(tmp_path: Path) -> None:
    ok = np.zeros((3, 16, 16, 3), np.uint8)
    with pytest.raises(DataError):
        write_mp4(tmp_path / "odd.mp4", np.zeros((3, 15, 16, 3), np.uint8), 10.0)
    with pytest.raises(DataError):
        write_mp4(tmp_path / "f.mp4", ok.astype(np.float32), 10.0)
    with pytest.raises(DataError):
        write_mp4(tmp_path / "f.mp4", ok, 0.0)
    frames = np.random.default_rng(0).integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    assert write_mp4(tmp_path / "a.mp4", frames, 7.5) == "libx264"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no temp files left
    dec, fps = read_mp4(tmp_path / "a.mp4")
    assert dec.shape == frames.shape and fps == 7.5


def test_write_mp4_falls_back_to_mpeg4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_codec_available", lambda name: name != "libx264")
    frames = np.full((4, 32, 32, 3), 128, np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        used = write_mp4(tmp_path / "b.mp4", frames, 10.0)
    assert used == "mpeg4" and any("libx264" in str(w.message) for w in caught)
    dec, fps = read_mp4(tmp_path / "b.mp4")
    assert dec.shape == frames.shape and fps == 10.0


# -- pixel-level answerability ---------------------------------------------------------------------------------
def saturated(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.int32)
    return (f.max(axis=2) - f.min(axis=2)) > 80


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def color_mask(frame: np.ndarray, color: str) -> np.ndarray:
    r, g, b = (frame[..., i].astype(np.int32) for i in range(3))
    return {"red": (r > g + 80) & (r > b + 80), "green": (g > r + 80) & (g > b + 60),
            "blue": (b > r + 80) & (b > g + 60)}[color]


def count_runs(on: np.ndarray) -> int:
    return int(on[0]) + int(np.sum(on[1:] & ~on[:-1]))


def flash_counts(v: np.ndarray) -> dict[str, int]:
    lum = v.astype(np.float32).mean(axis=3)  # [T, H, W]
    lamp = (lum.max(axis=0) - lum.min(axis=0)) > 100
    w = v.shape[2]
    out = {}
    for name, cols in (("lamp", slice(0, w)), ("left lamp", slice(0, w // 2)), ("right lamp", slice(w // 2, w))):
        m = np.zeros_like(lamp)
        m[:, cols] = lamp[:, cols]
        series = lum[:, m].mean(axis=1) if m.any() else np.zeros(len(v))
        out[name] = count_runs(series > 160) if m.any() else 0
    return out


def move_onsets(v: np.ndarray) -> dict[str, tuple[int, float]]:
    """colour -> (first frame it has moved > 2 px, net vertical displacement)."""
    out = {}
    for color in ("red", "green", "blue"):
        track = np.array([centroid(color_mask(f, color)) for f in v])
        moved = np.nonzero(np.abs(track[:, 1] - track[0, 1]) > 2)[0]
        out[color] = (int(moved[0]), float(track[-1, 1] - track[0, 1]))
    return out


def camera_motion(v: np.ndarray) -> str:
    a, b = (v[i].astype(np.float32).mean(axis=2) for i in (0, -1))
    h, w = a.shape
    best = []
    for d in range(-40, 41):
        if abs(d) >= 4:  # content moved by d px: b[:, x] == a[:, x - d]
            ex = np.mean((b[:, max(d, 0):w + min(d, 0)] - a[:, max(-d, 0):w - max(d, 0)]) ** 2)
            ey = np.mean((b[max(d, 0):h + min(d, 0)] - a[max(-d, 0):h - max(d, 0)]) ** 2)
            best += [(ex, "pan left" if d > 0 else "pan right"), (ey, "tilt up" if d > 0 else "tilt down")]
    ii, jj = np.mgrid[0:h, 0:w] + 0.5
    for m in np.geomspace(0.5, 2.0, 41):
        if abs(math.log(m)) >= 0.1:  # content magnified by m about the centre
            r = np.floor(h / 2 + (ii - h / 2) / m).astype(int)
            c = np.floor(w / 2 + (jj - w / 2) / m).astype(int)
            ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            e = np.mean((b[ok] - a[r[ok], c[ok]]) ** 2)
            best.append((e, "zoom in" if m > 1 else "zoom out"))
    return min(best)[1]


def corner_of(dx: float, dy: float) -> str:
    return ("top" if dy < 0 else "bottom") + "-" + ("left" if dx < 0 else "right")


def object_motion(v: np.ndarray) -> tuple[str, str | None]:
    masks = [saturated(f) for f in v]
    cs = np.array([centroid(m) for m in masks])
    area = np.array([m.sum() for m in masks], dtype=float)
    h, w = masks[0].shape
    if np.ptp(cs[:, 0]) > 0.3 * w:
        return "slide", "left to right" if cs[-1, 0] > cs[0, 0] else "right to left"
    if area[-1] < 0.6 * area[0]:
        return "shrink", None
    if area[-1] > 1.6 * area[0]:
        return "grow", None
    if np.ptp(cs[:, 1]) > 0.2 * h:
        return "bounce", None
    angles = []
    for m, (cx, cy) in zip(masks, cs):
        ys, xs = np.nonzero(m)
        k = int(np.argmax((xs - cx) ** 2 + (ys - cy) ** 2))
        angles.append(math.atan2(ys[k] - cy, xs[k] - cx))
    turn = float(np.unwrap(angles)[-1] - angles[0])
    assert abs(turn) > math.pi / 2, "no visible motion"
    return "spin", "clockwise" if turn > 0 else "counterclockwise"  # y points down


def pixel_answer(category: str, stem: str, v: np.ndarray) -> str:
    """The correct option text, derived from decoded pixels only."""
    if category == "Repetition Count":
        counts = flash_counts(v)
        if "in total" in stem:
            return str(counts["left lamp"] + counts["right lamp"])
        return str(counts[next(n for n in ("left lamp", "right lamp", "lamp") if f"the {n}" in stem)])
    if category in ("Action Order", "Motion-related Objects"):
        on = move_onsets(v)
        order = sorted(on, key=lambda c: on[c][0])
        if stem.startswith("In what order"):
            return ", then ".join(order)
        if "second" in stem:
            return order[1]
        if "first" in stem:
            return order[0]
        if "last" in stem:
            return order[2]
        return next(c for c in on if on[c][1] < -10)  # moves upward
    if category == "Camera Motion":
        return camera_motion(v)
    if category == "Location-related Motion":
        cs = np.array([centroid(saturated(f)) for f in v])
        if "end up" in stem:
            return corner_of(cs[-1, 0] - v.shape[2] / 2, cs[-1, 1] - v.shape[1] / 2)
        d = cs - cs[0]
        t = int(np.nonzero(np.hypot(d[:, 0], d[:, 1]) > 0.25 * min(v.shape[1:3]))[0][0])
        return corner_of(*d[t])
    motion, detail = object_motion(v)
    return detail if ("direction" in stem and detail) else motion


def matches(category: str, computed: str, option: str) -> bool:
    """Does the option text state the pixel-derived answer?"""
    option = option.lower()
    if category in ("Action Order", "Motion-related Objects"):
        colours = [w for w in re.findall(r"red|green|blue", option)]
        return colours == computed.split(", then ")
    if category == "Camera Motion":
        verb, direction = computed.split()
        return option == f"the camera {verb}s {direction}"
    if category == "Location-related Motion":
        return option == f"the {computed} corner"
    if category == "Motion Recognition":
        stems = {"bounce": "bounces", "spin": "spins", "slide": "slides", "shrink": "shrinks", "grow": "grows"}
        return option in (computed, f"from {computed}") or option.startswith(f"it {stems.get(computed, '#')}")
    return option == computed


def test_every_answer_is_computable_from_decoded_pixels(bench: Path) -> None:
    truth = json.loads((bench / "synth_truth.json").read_text())
    checked = Counter()
    for row in rows_of(bench):
        v, fps = read_mp4(bench / "self-collected" / row["video_path"])
        info = row["video_info"]
        assert fps == info["fps"] and len(v) == round(info["duration"] * info["fps"])
        assert v.shape[1:] == (info["resolution"]["height"], info["resolution"]["width"], 3)
        for qa in row["qa"]:
            stem, opts = split_question(qa["question"])
            computed = pixel_answer(row["question_type"], stem, v)
            hits = [L for L, o in zip("ABCDEF", opts) if matches(row["question_type"], computed, o)]
            assert hits == [truth[qa["uid"]]["answer"]], (row["question_type"], stem, computed, opts)
            checked[row["question_type"]] += 1
    assert set(checked) == set(CATEGORIES)


@pytest.mark.parametrize("kind,param,values", [
    ("camera", "motion", ("pan left", "pan right", "tilt up", "tilt down", "zoom in", "zoom out")),
    ("motion_type", "motion", ("bounce", "spin", "slide", "shrink", "grow")),
])
def test_every_motion_class_is_recognisable_after_encoding(tmp_path: Path, kind: str, param: str,
                                                            values: tuple[str, ...]) -> None:
    for i, value in enumerate(values):
        scene = make_scene(kind, np.random.default_rng(100 + i), Canvas(), **{param: value})
        write_mp4(tmp_path / f"{i}.mp4", scene.frames, scene.fps)
        v, _ = read_mp4(tmp_path / f"{i}.mp4")
        if kind == "camera":
            assert camera_motion(v) == value
        else:
            motion, detail = object_motion(v)
            assert motion == value
            assert detail == scene.facts.get("spin_direction", scene.facts.get("slide_direction"))


def test_flash_counts_from_pixels_match_all_counts(tmp_path: Path) -> None:
    for k in range(1, 6):
        scene = make_scene("flash", np.random.default_rng(k), Canvas(), counts=(k, 6 - k))
        write_mp4(tmp_path / f"{k}.mp4", scene.frames, scene.fps)
        v, _ = read_mp4(tmp_path / f"{k}.mp4")
        got = flash_counts(v)
        assert (got["left lamp"], got["right lamp"]) == (k, 6 - k)
        assert all(b - a <= 1 for a, b in (f for lamp in scene.facts["lamps"] for f in lamp["flashes"]))


def test_h264_bytes_do_not_depend_on_process_heap(tmp_path, monkeypatch):
    """PyAV's libx264 with macroblock-tree rate control encoded identical frames to different bytes
    depending on the process heap (seen on the stage-1 training clips: 1-6 of 6 re-encodes
    differed); write_mp4 disables mbtree so generated data is reproducible."""
    import vpbench.train.manifest as manifest

    monkeypatch.setattr(manifest, "SYNTH_CODEC", "libx264")
    ref = manifest.synth_sft_manifest(tmp_path / "ref", n_clips=8, seed=0).parent
    names = sorted(p.relative_to(ref) for p in ref.rglob("*.mp4"))
    for i in range(1, 9):
        junk = [bytearray(48 * (j % 89 + 1)) for j in range(700 * i)]  # a different heap each time
        again = manifest.synth_sft_manifest(tmp_path / f"again{i}", n_clips=8, seed=0).parent
        del junk
        assert [(again / n).read_bytes() for n in names] == [(ref / n).read_bytes() for n in names], i
