"""Generated VRU-Accident data (tasks/vru_accident_vqa/synth.py): the official layout, both tasks'
loaders and a frame-consuming dummy run end to end, determinism, decodable clips, and that the
answers the generator claims are visible in the decoded pixels (flash, stop, light, signal)."""

from __future__ import annotations

import importlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import require

from vpbench.errors import ConfigError
from vpbench.registry import get_task
from vpbench.synth.render import read_mp4
from vpbench.task import StatsOptions

VQA = get_task("vru_accident_vqa")
CAP = get_task("vru_accident_caption")
SYNTH = importlib.import_module("vpbench_tasks.vru_accident_vqa.synth")
SOURCES = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")
TAIL = " Choose the correct option (A, B, C, or D) without any explanations."
OFFICIAL_QUESTIONS = {  # benchmarks.md §2.1, the official fixed strings
    "weather and light": "What's the weather and lighting?" + TAIL,
    "location": "Where did the accident happen?" + TAIL,
    "road type": "What type of road is shown?" + TAIL,
    "accident type": "What kind of accident occurred?" + TAIL,
    "accident reason": "Why did the accident happen?" + TAIL,
    "prevention method": "How could this accident be prevented?" + TAIL,
}
OPTIONS_RE = re.compile(r"^A\. ([^,]+), B\. ([^,]+), C\. ([^,]+), D\. ([^,]+)$")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Generated through the caption task's wrapper (exercises its relative import)."""
    out = tmp_path_factory.mktemp("vru") / "data"
    CAP.synth(out, 0)
    return out


@pytest.fixture(scope="module")
def truth(root) -> dict:
    return json.loads((root / "synth_truth.json").read_text())


def _json(root: Path, src: str, kind: str) -> dict:
    return json.loads((root / "MetaData" / src / f"{src}_{kind}.json").read_text())


def test_official_layout_keys_questions_and_options(root, truth):
    for src in SOURCES:
        vqa, caps = _json(root, src, "VQA_annotation"), _json(root, src, "Dense_Caption")
        keys = [f"./VRU_videos/{src}/VRU_{n}.mp4" for n in (1, 2)]
        assert list(vqa) == keys
        assert list(caps) == [k[:-4] for k in keys]  # no .mp4, same order
        for key in keys:
            assert (root / key[2:]).is_file()
            assert list(vqa[key]) == list(OFFICIAL_QUESTIONS)
            for cat, item in vqa[key].items():
                assert set(item) == {"question", "options", "GT"}
                assert item["question"] == OFFICIAL_QUESTIONS[cat]
                m = OPTIONS_RE.match(item["options"])
                assert m, item["options"]
                texts = list(m.groups())
                assert len(set(texts)) == 4
                # the research note's splitter (5,988 / 6,000 official strings) splits ours into the same 4
                parts = re.split(r"[,.]\s*(?=[B-D]\.)", item["options"])
                assert [p[3:] for p in parts] == texts
                assert texts["ABCD".index(item["GT"])] == truth[key]["answers"][cat]
            assert isinstance(caps[key[:-4]]["gt"], str)
    assert set(truth) == {f"./VRU_videos/{s}/VRU_{n}.mp4" for s in SOURCES for n in (1, 2)}


def test_vqa_task_loads_generated_data(root):
    samples = VQA.load_samples(root)
    assert len(samples) == 4 * 2 * 6
    ids = [s.id for s in samples]
    assert len(set(ids)) == len(ids)
    assert ids == [f"vru_accident_vqa/{src}/VRU_{n}/{cat}" for src in SOURCES for n in (1, 2)
                   for cat in OFFICIAL_QUESTIONS]
    assert ids == [s.id for s in VQA.load_samples(root)]  # stable
    assert Counter(s.groups["category"] for s in samples) == {c: 8 for c in OFFICIAL_QUESTIONS}
    assert Counter(s.groups["source"] for s in samples) == {s: 12 for s in SOURCES}
    by_id = {s.id: s for s in samples}
    for src in SOURCES:
        for key, cats in _json(root, src, "VQA_annotation").items():
            stem = key.rsplit("/", 1)[1][:-4]
            for cat, item in cats.items():
                s = by_id[f"vru_accident_vqa/{src}/{stem}/{cat}"]
                assert (s.answer, s.meta["options_text"], s.question) == (item["GT"], item["options"], item["question"])
                assert s.video.path == f"VRU_videos/{src}/{stem}.mp4" and s.cluster == f"{src}/{stem}"


def test_caption_task_loads_generated_data(root, truth):
    samples = CAP.load_samples(root)
    ids = [s.id for s in samples]
    assert ids == [f"vru_accident_caption/{src}/VRU_{n}" for src in SOURCES for n in (1, 2)]
    assert Counter(s.groups["source"] for s in samples) == {s: 2 for s in SOURCES}
    for s in samples:
        tr = truth[f"./{s.video.path}"]
        words = len(s.answer.split())
        assert 60 <= words <= 120, (s.id, words)
        # the caption states the VQA answers
        for cat in ("weather and light", "location", "road type", "accident type"):
            assert tr["answers"][cat] in s.answer, (cat, tr["answers"][cat])
        assert f"{tr['facts']['speed_kmh']} km/h" in s.answer and tr["facts"]["direction"] in s.answer


def _run(tmp_path: Path, root: Path, monkeypatch, task: str):
    import vpbench.api as api
    from vpbench.api import RunConfig, evaluate
    from vpbench.models.dummy import DummyBackend

    backend = DummyBackend("first", needs_frames=True)  # decodes the 8 protocol frames of every clip
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: backend)
    cfg = RunConfig(model="dummy:first", tasks=(task,), output=tmp_path / "out", data_roots={task: root},
                    frame_cache=tmp_path / "frames", cache=False)
    res = evaluate(cfg, echo=lambda s: None)[task]
    assert res.counts["n_failed"] == 0 and res.counts["n_excluded"] == 0 and not res.partial
    return res


def test_dummy_frames_run_vqa_end_to_end(tmp_path, root, monkeypatch):
    res = _run(tmp_path, root, monkeypatch, "vru_accident_vqa")
    assert res.counts["n_evaluated"] == 48
    # dummy text "A vehicle moves along the road." → the default (qwen) parser reads "A"
    gts = [(cat, item["GT"]) for src in SOURCES for cats in _json(root, src, "VQA_annotation").values()
           for cat, item in cats.items()]
    per_cat = {c: np.mean([g == "A" for cc, g in gts if cc == c]) for c in OFFICIAL_QUESTIONS}
    metrics = {m.name: m.value for m in res.metrics}
    for cat, column in (("weather and light", "Weather & Light"), ("accident reason", "Accident Cause")):
        assert metrics[column] == pytest.approx(per_cat[cat])
    assert metrics["Average"] == pytest.approx(np.mean(list(per_cat.values())))
    assert metrics["answered_rate"] == 1.0


def test_dummy_frames_run_caption_end_to_end(tmp_path, root, monkeypatch):
    from rouge_score import rouge_scorer

    from vpbench.models.dummy import NO_OPTION_TEXT

    res = _run(tmp_path, root, monkeypatch, "vru_accident_caption")
    assert res.counts["n_evaluated"] == 8
    metrics = {m.name: m.value for m in res.metrics}
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    refs = [s.answer for s in CAP.load_samples(root)]
    expected = np.mean([scorer.score(r, NO_OPTION_TEXT)["rougeL"].fmeasure for r in refs])
    assert metrics["ROUGE-L F"] == pytest.approx(expected)
    require("METEOR" in metrics, "; ".join(n for n in res.notes if n.startswith("METEOR")) or "METEOR not reported")
    from vpbench.metrics.captions import meteor

    # the reported METEOR is the mean of per-pair NLTK METEOR (itself checked against the official
    # results in test_vru_conformance.py), to the last bit
    assert metrics["METEOR"] == np.mean([meteor(r, NO_OPTION_TEXT) for r in refs])
    assert 0.0 < metrics["METEOR"] < 0.2


def test_caption_aggregate_has_meteor_or_says_why(root):
    """Scores of the generated references against themselves: METEOR near 1 (needs WordNet)."""
    from vpbench.types import Record

    recs = []
    for s in CAP.load_samples(root):
        recs.append(Record(
            sample_id=s.id, task=s.task, cluster=s.cluster, groups=dict(s.groups), answer=s.answer, options=(),
            meta=dict(s.meta), request_fingerprint="", protocol_fingerprint="", frame_timestamps_s=(),
            response=s.answer, parsed=s.answer, parser="raw", scores=dict(CAP.score(s.answer, s.answer, s.meta))))
    agg = CAP.aggregate(recs, StatsOptions(n_boot=0))
    metrics = {m.name: m.value for m in agg.metrics}
    assert metrics["ROUGE-L F"] == pytest.approx(1.0)
    require("METEOR" in metrics, "; ".join(n for n in agg.notes if n.startswith("METEOR")))
    from vpbench.metrics.captions import meteor_tokens

    # identical texts of m tokens: precision = recall = 1, one chunk, so METEOR = 1 - 0.5 * (1/m)^3
    want = np.mean([1 - 0.5 * (1 / len(meteor_tokens(s.answer))) ** 3 for s in CAP.load_samples(root)])
    assert metrics["METEOR"] == pytest.approx(want, abs=1e-12)


def test_videos_decode_at_stated_fps_and_length(root, truth):
    for key, tr in truth.items():
        frames, fps = read_mp4(root / key[2:])
        assert frames.shape == (30, 96, 128, 3) and fps == pytest.approx(10.0)
        assert (tr["fps"], tr["n_frames"]) == (10.0, 30)
        assert tr["event_frames"] == sorted({*tr["flash_frames"], tr["collision_frame"] + 1, tr["collision_frame"] + 2})


def test_deterministic_by_seed_and_per_video(tmp_path, root):
    again = tmp_path / "again"
    VQA.synth(again, 0)  # the VQA task's wrapper: the same generator as the caption task's
    for rel in ["synth_truth.json"] + [f"MetaData/{s}/{s}_{k}.json" for s in SOURCES
                                       for k in ("VQA_annotation", "Dense_Caption")]:
        assert (again / rel).read_bytes() == (root / rel).read_bytes(), rel
    for s in SOURCES:
        a, _ = read_mp4(again / f"VRU_videos/{s}/VRU_2.mp4")
        b, _ = read_mp4(root / f"VRU_videos/{s}/VRU_2.mp4")
        assert np.array_equal(a, b)
    one = SYNTH.synth_vru(tmp_path / "one", seed=0, videos_per_source=1)  # a clip ignores the count
    key = "./VRU_videos/DoTA/VRU_1.mp4"
    assert _json(one, "DoTA", "VQA_annotation")[key] == _json(root, "DoTA", "VQA_annotation")[key]
    other = SYNTH.synth_vru(tmp_path / "other", seed=1, videos_per_source=1)
    assert _json(other, "DoTA", "Dense_Caption") != {k: v for k, v in _json(root, "DoTA", "Dense_Caption").items()
                                                    if k.endswith("_1")}
    with pytest.raises(ConfigError, match="videos_per_source"):
        SYNTH.synth_vru(tmp_path / "none", videos_per_source=0)


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, dict]:
    out = SYNTH.synth_vru(tmp_path_factory.mktemp("vru_many"), seed=5, videos_per_source=4)
    return out, json.loads((out / "synth_truth.json").read_text())


def test_event_frames_and_cues_are_in_the_pixels(many):
    """Image analysis that never reads the truth to find things: the flash frame is the collision
    frame, the scene is still after the sudden stop, the signal is red exactly for "red light",
    and night clips are darker than day clips."""
    root, truth = many
    night, day = [], []
    for key, tr in truth.items():
        frames, _ = read_mp4(root / key[2:])
        f, fr = tr["facts"], frames.astype(int)
        flash_like = (fr[..., 0] >= 245) & (fr[..., 1] >= 238) & (fr[..., 2] >= 180) & (fr[..., 2] <= 235)
        counts = flash_like.sum(axis=(1, 2))
        tc = int(np.argmax(counts))
        assert tc == tr["collision_frame"] and counts[tc] >= 80 and np.sort(counts)[-2] <= 50, (key, counts)
        if f["weather"] not in ("rainy", "snowy"):  # moving particles aside, nothing moves after the stop
            diffs = np.abs(np.diff(fr, axis=0)).max(axis=(1, 2, 3))
            assert diffs[tr["stop_frame"]:].max() <= 12 and diffs[tc - 3:tc].min() >= 40, (key, diffs)
        sx, sy = f["signal_xy"]
        r, g, _ = np.median(fr[:, int(sy), int(sx)], axis=0)
        assert (r - g >= 60) if f["cause"] == "red light" else (g - r >= 60), (key, f["cause"], r, g)
        (night if f["light"] == "night" else day if f["light"] in ("day", "morning") else []).append(fr.mean())
    assert night and day and max(night) < 70 < 85 < min(day)
    causes = Counter(tr["facts"]["cause"] for tr in truth.values())
    assert len(causes) >= 4  # the check above covers both signal colours


def test_unknown_factor_is_a_config_error():
    scene = importlib.import_module("vpbench_tasks.vru_accident_vqa.synth_scene")
    with pytest.raises(ConfigError, match="road_type='motorway'"):
        scene.crash_scene(np.random.default_rng(0), weather_light="sunny day", location="urban", road_type="motorway",
                          vehicle="car", vru="pedestrian", cause="speeding")
