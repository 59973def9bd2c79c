"""VSI-Bench: official parsers, MRA (boundaries), macro aggregation, loader on generated data."""

from __future__ import annotations

import json

import pytest

from vpbench.errors import DataError
from vpbench.metrics.vsi import mean_relative_accuracy, mra_thresholds, vsi_subscores
from vpbench.parsers.vsibench import PARSERS, extract_number, fuzzy_matching
from vpbench.registry import get_task
from vpbench.task import StatsOptions
from vpbench.types import Record

OPTS4 = ("A. chair", "B. table", "C. sofa", "D. lamp")
MCA = {"answer_type": "MCA"}
NA = {"answer_type": "NA"}


@pytest.fixture(scope="module")
def task():
    return get_task("vsibench")


@pytest.mark.parametrize("text,expected", [
    ("A", "A"), ("a", "A"), ("A.", "A"), ("d...", "D"),
    ("(A)", None), ("A)", None), ("The answer is A", None), ("B, because", None),
    ("E", None),                       # not an option letter of 4 options
    ("c\nbecause", None),              # split is on " " only: first token is 'c\nbecause'
    ("B is right", "B"), ("", None), (" B", None),  # leading space → empty first token
])
def test_official_mca_parser(text, expected):
    assert PARSERS["official"](text, OPTS4, MCA) == expected


@pytest.mark.parametrize("text,expected", [
    ("3", "3.0"), ("3 meters", "3.0"), ("2.5.", "2.5"), ("1e1", "10.0"), ("4\n", "4.0"),
    ("3.5m", None), ("about 3", None), ("</think> 2.5", None), ("three", None), ("", None),
    (" 4", None),                      # first space-token is empty
])
def test_official_na_parser(text, expected):
    assert PARSERS["official"](text, (), NA) == expected


@pytest.mark.parametrize("text,expected", [
    ("about 3", 3.0), ("</think> 2.5", 2.5), ("3.5m", 3.5), ("three", 3.0), ("Twenty-one chairs", 21.0),
    ("three hundred and twenty-one", 321.0), ("one apple, room 2", 1.0), ("room 2, one apple", 2.0),
    ("-2 m", -2.0), ("", None), ("none", None),
])
def test_lmms_eval_extract_number(text, expected):
    assert extract_number(text) == expected
    assert PARSERS["lmms_eval"](text, (), NA) == (None if expected is None else repr(expected))


def test_fuzzy_matching_is_official():
    assert fuzzy_matching("B. table") == "B"
    assert fuzzy_matching("1.7 m") == "1.7"
    assert fuzzy_matching("1.7..") == "1.7"


def test_mra_thresholds_are_ten():
    c = mra_thresholds()
    assert len(c) == 10 and c[0] == 0.5 and c[-1] == 0.95


@pytest.mark.parametrize("pred,target,mra,mra_strict", [
    (1.0, 1.0, 1.0, 1.0),
    (1.5, 1.0, 0.1, 0.0),    # rel .5 == 1 - .50: hit only with <=
    (0.5, 1.0, 0.1, 0.0),
    (3.0, 2.0, 0.1, 0.0),
    (0.49, 1.0, 0.0, 0.0),   # rel .51 > .5
    (1.25, 1.0, 0.6, 0.5),   # rel .25: thetas .50-.75 (6) with <=, .75 boundary lost with <
    (0.75, 1.0, 0.6, 0.5),
    (2.2, 2.0, 0.9, 0.8),    # rel .1 == 1 - .90 (both sides 0.10000000000000009 in float)
    (1.05, 1.0, 1.0, 0.9),   # rel .05 == 1 - .95 (0.050000000000000044 both sides)
    (0.95, 1.0, 1.0, 0.9),
    (0.0, 2.0, 0.0, 0.0),
    (-1.0, 2.0, 0.0, 0.0),
])
def test_mra_by_hand(pred, target, mra, mra_strict):
    assert mean_relative_accuracy(pred, target) == pytest.approx(mra, abs=1e-12)
    assert mean_relative_accuracy(pred, target, strict=True) == pytest.approx(mra_strict, abs=1e-12)


def test_mra_zero_target_raises():
    with pytest.raises(ValueError):
        mean_relative_accuracy(1.0, 0.0)


def test_score(task):
    assert task.score("A", "a", MCA) == {"score": 1.0, "answered": 1.0}
    assert task.score("B", "A", MCA) == {"score": 0.0, "answered": 1.0}
    assert task.score(None, "A", MCA) == {"score": 0.0, "answered": 0.0}
    assert task.score("3.0", "2", NA) == {"score": pytest.approx(0.1), "answered": 1.0}
    assert task.score(None, "2", NA) == {"score": 0.0, "answered": 0.0}
    assert task.score("nan", "2", NA)["score"] == 0.0


def _rec(i: int, qtype: str, score: float, cluster: str = "", parsed: str | None = "x") -> Record:
    return Record(
        sample_id=str(i), task="vsibench", cluster=cluster or f"scene{i % 3}", groups={"question_type": qtype},
        answer="A", options=(), meta={}, request_fingerprint="", protocol_fingerprint="",
        frame_timestamps_s=(), response="", parsed=parsed, parser="official@x",
        scores={"score": score, "answered": float(parsed is not None)},
    )


HAND = [
    ("object_rel_direction_easy", [1, 1]), ("object_rel_direction_medium", [0]),
    ("object_rel_direction_hard", [1, 0]), ("object_counting", [0.5, 0.7]), ("object_abs_distance", [0.2]),
    ("object_size_estimation", [1.0]), ("room_size_estimation", [0.0]), ("object_rel_distance", [1, 0, 0, 1]),
    ("route_planning", [1]), ("obj_appearance_order", [0, 0]),
]


def _hand_records() -> list[Record]:
    recs, i = [], 0
    for qtype, scores in HAND:
        for s in scores:
            recs.append(_rec(i, qtype, float(s), parsed=None if qtype == "room_size_estimation" else "x"))
            i += 1
    return recs


def test_subscores_by_hand():
    qtypes = [q for q, scores in HAND for _ in scores]
    scores = [s for _, ss in HAND for s in ss]
    out = vsi_subscores(scores, qtypes)
    # rel. direction = mean(1, 0, .5) = .5 (the micro mean would be 3/5)
    assert out["object_rel_direction"] == pytest.approx(0.5)
    assert out["object_counting"] == pytest.approx(0.6)
    # overall = (.6 + .2 + 1 + 0 + .5 + .5 + 1 + 0) / 8
    assert out["overall"] == pytest.approx(3.8 / 8)


def test_aggregate_by_hand(task):
    agg = task.aggregate(_hand_records(), StatsOptions(n_boot=0))
    m = {x.name: x for x in agg.metrics}
    assert m["Avg"].value == pytest.approx(0.475)
    assert m["Avg"].n == 17 and m["Avg"].n_clusters == 3 and m["Avg"].n_failed == 1
    assert m["answered_rate"].value == pytest.approx(16 / 17)
    tasks = {x.name: x.value for x in agg.by_group["task"]}
    assert list(tasks) == ["Obj. Count", "Abs. Dist.", "Obj. Size", "Room Size", "Rel. Dist.", "Rel. Dir.",
                           "Route Plan", "Appr. Order"]
    assert tasks["Rel. Dir."] == pytest.approx(0.5)
    assert tasks["Obj. Count"] == pytest.approx(0.6)
    assert tasks["Rel. Dist."] == pytest.approx(0.5)
    assert {x.name: x.value for x in agg.by_group["question_type"]}["object_rel_direction_easy"] == 1.0
    assert not agg.notes


def test_aggregate_ci_and_missing_tasks(task):
    recs = [r for r in _hand_records() if r.groups["question_type"] != "route_planning"]
    agg = task.aggregate(recs, StatsOptions(n_boot=200, seed=1))
    avg = agg.metrics[0]
    assert avg.value == pytest.approx(2.8 / 7)
    assert avg.ci_low is not None and avg.ci_low <= avg.ci_high
    assert avg.ci_method.startswith("cluster-bootstrap")
    assert any("7 of 8" in n and "Route Plan" in n for n in agg.notes)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory, task):
    root = tmp_path_factory.mktemp("vsi")
    task.synth(root, 0)
    return root


def test_load_generated(task, synth_root):
    samples = task.load_samples(synth_root)
    assert len(samples) == 30
    assert len({s.id for s in samples}) == 30
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.groups["question_type"]] = counts.get(s.groups["question_type"], 0) + 1
        assert (synth_root / s.video.path).is_file()
        assert s.cluster == s.video.path[: -len(".mp4")]
    assert set(counts.values()) == {3} and len(counts) == 10


def test_ids_stable(task, synth_root, tmp_path):
    task.synth(tmp_path, 0)
    a, b = task.load_samples(synth_root), task.load_samples(tmp_path)
    assert [(s.id, s.question, s.answer) for s in a] == [(s.id, s.question, s.answer) for s in b]


def test_gold_answers_score_full(task, synth_root):
    samples = task.load_samples(synth_root)
    recs = []
    for s in samples:
        parsed = task.parser(None)(s.answer, s.options, s.meta)
        sc = task.score(parsed, s.answer, s.meta)
        recs.append(Record(s.id, s.task, s.cluster, s.groups, s.answer, s.options, s.meta, "", "", (),
                           s.answer, parsed, "official", sc))
    agg = task.aggregate(recs, StatsOptions(n_boot=0))
    assert agg.metrics[0].value == 1.0


def test_prompt_is_official(task, synth_root):
    samples = task.load_samples(synth_root)
    na = next(s for s in samples if s.meta["answer_type"] == "NA")
    mca = next(s for s in samples if s.meta["answer_type"] == "MCA")
    text = lambda s: task.build_messages(s, task.protocol)[-1].parts[1].text  # noqa: E731
    assert text(na) == ("These are frames of a video.\n" + na.question
                        + "\nPlease answer the question using a single word or phrase.")
    assert text(mca) == "\n".join(["These are frames of a video.", mca.question, "Options:\n" + "\n".join(mca.options),
                                   "Answer with the option's letter from the given choices directly."])
    assert task.protocol.nframes == 32 and task.protocol.max_new_tokens == 16


def test_loader_errors(task, tmp_path):
    with pytest.raises(DataError, match="not found"):
        task.load_samples(tmp_path)
    row = {"id": 1, "dataset": "scannet", "scene_name": "s", "question_type": "object_counting",
           "question": "q", "ground_truth": "2", "options": None}
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match="duplicate id"):
        task.load_samples(tmp_path)
    (tmp_path / "test.jsonl").write_text(json.dumps({**row, "ground_truth": "0"}) + "\n")
    with pytest.raises(DataError, match="must be > 0"):
        task.load_samples(tmp_path)
    bad = {**row, "question_type": "object_rel_distance", "options": ["A. x", "B. y"], "ground_truth": "C"}
    (tmp_path / "test.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(DataError, match="option letters"):
        task.load_samples(tmp_path)
