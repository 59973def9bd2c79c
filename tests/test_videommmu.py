"""VideoMMMU: official MC/open extraction, track aggregation, Δknowledge, loader on generated data."""

from __future__ import annotations

import sys

import pytest

from vpbench.errors import DataError, MetricUnavailable
from vpbench.metrics.videommmu import delta_knowledge, knowledge_transitions
from vpbench.parsers.videommmu import (
    API_ERROR, NO_ANSWER, PARSERS, eval_open, multi_choice_info, parse_multi_choice, parse_open_response,
)
from vpbench.registry import get_task
from vpbench.task import StatsOptions
from vpbench.types import Record

OPTIONS = ["aldose", "ketose", "glucose", "fructose", "ribose", "xylose", "arabinose", "mannose", "galactose",
           "sucrose"]


@pytest.fixture(scope="module")
def tasks():
    main = get_task("videommmu")
    return main, sys.modules["vpbench_tasks.videommmu.task"].TASK_QONLY


@pytest.mark.parametrize("text,expected", [
    ("B", "B"), ("(C)", "C"), ("The answer is D.", "D"), ("A. aldose", "A"), ("</think> C", "C"),
    ("I think the answer is B", "B"),           # 'I ' and 'B ' are both candidates: the later one wins
    ("B. is wrong, C. is right", "C"),          # several 'X.' candidates: last occurrence wins
    ("I believe the correct choice must be aldose sugar", "I"),  # 'I ' is option I (10 options)
    ("the correct sugar here would be ketose", "B"),             # > 5 words: option-text match
    ("ketose", NO_ANSWER),                      # <= 5 words: no text match
    ("a", NO_ANSWER), ("none of these", NO_ANSWER),
    ("", API_ERROR),
])
def test_official_mc_parser(text, expected):
    index2ans, choices = multi_choice_info(OPTIONS)
    assert parse_multi_choice(text, choices, index2ans) == expected


@pytest.mark.parametrize("response,gold,correct", [
    ("12.97", "12.97", True),
    ("The answer is 12.97 dollars", "12.97", True),
    ("12.966", "12.97", True),                  # numbers are rounded to 2 decimals
    ("1,234", "1234", True),
    ("Total = 5", "5", True),                   # '=' indicator in the last piece
    ("There are 14 apples", "4", False),        # 14 != 4 and numeric golds are not substring-matched
    ("x", "x", True),                           # one-character strings are padded: ' x' in ' x'
    ("box", "x", False),                        # ... so 'x' is not found inside 'box'
    ("the ratio is 3/4", "3/4", True),          # string gold: substring of the key tail
    ("about 13", "12.97", False),
])
def test_open_parser_and_eval(response, gold, correct):
    assert eval_open(gold, parse_open_response(response)) is correct


def test_open_parser_empty_is_api_error():
    assert parse_open_response("") == API_ERROR
    assert PARSERS["official"]("", (), {"question_type": "open"}) is None


def test_parsers_question_type_rule(tasks):
    task, _ = tasks
    opts = ("3, 3", "3, 4", "3, 5", "3, 6", "4, 3", "4, 4", "4, 5", "4, 6", "5, 5", "5, 6")
    meta = {"question_type": None}
    off, lit = PARSERS["official"], PARSERS["lmms_eval_literal"]
    assert off("G. 4, 6", opts, meta) == "G"
    assert task.score(off("G. 4, 6", opts, meta), "G", meta)["score"] == 1.0
    # lmms-eval's literal rule sends rows without question_type through the open parser
    assert task.score(lit("G. 4, 6", opts, meta), "G", meta)["score"] == 0.0
    assert task.score(lit("G", opts, meta), "G", meta)["score"] == 1.0
    assert task.score(off("No idea", opts, meta), "G", meta) == {"score": 0.0, "answered": 0.0}


def _rec(sid: str, track: str, score: float, response: str = "x", task: str = "videommmu") -> Record:
    oid = sid.split("/")[-1]
    return Record(
        sample_id=sid, task=task, cluster=oid, groups={"track": track, "discipline": "Science", "subject": "Math"},
        answer="A", options=(), meta={}, request_fingerprint="", protocol_fingerprint="", frame_timestamps_s=(),
        response=response, parsed=None if response == "" else "A", parser="official",
        scores={"score": score, "answered": float(response != "")},
    )


def test_aggregate_overall_is_mean_of_tracks(tasks):
    task, _ = tasks
    recs = [_rec("Perception/v1", "Perception", 1), _rec("Perception/v2", "Perception", 1),
            _rec("Comprehension/v1", "Comprehension", 0), _rec("Comprehension/v2", "Comprehension", 1),
            _rec("Comprehension/v3", "Comprehension", 0), _rec("Comprehension/v4", "Comprehension", 1),
            _rec("Adaptation/v1", "Adaptation", 0, response="")]
    agg = task.aggregate(recs, StatsOptions(n_boot=0))
    m = {x.name: x.value for x in agg.metrics}
    assert m["Overall"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)   # micro would be 3/7
    assert m["Perception"] == 1.0 and m["Comprehension"] == 0.5 and m["Adaptation"] == 0.0
    assert m["answered_rate"] == pytest.approx(6 / 7)
    assert any("1 empty responses" in n and "Perception 1.0000, Comprehension 0.5000" in n for n in agg.notes)


def _pair(video: list[float], qonly: list[float]) -> tuple[list[Record], list[Record]]:
    v = [_rec(f"Adaptation/v{i}", "Adaptation", s) for i, s in enumerate(video)]
    v += [_rec("Perception/v0", "Perception", 0.0)]          # ignored by Δknowledge
    q = [_rec(f"Adaptation/v{i}", "Adaptation", s, task="videommmu_adaptation_qonly") for i, s in enumerate(qonly)]
    return v, q


def test_delta_knowledge_by_hand():
    v, q = _pair([1, 1, 0, 1, 0], [1, 0, 0, 0, 0])
    d = delta_knowledge(v, q, StatsOptions(n_boot=0))
    assert d.value == pytest.approx((0.6 - 0.2) / (1 - 0.2)) and d.n == 5
    t = knowledge_transitions(v, q)
    assert t["wrong2right"] == pytest.approx(2 / 4) and t["right2wrong"] == 0.0
    v, q = _pair([1, 0, 0, 0, 0], [1, 1, 1, 0, 0])
    assert delta_knowledge(v, q, StatsOptions(n_boot=0)).value == pytest.approx((0.2 - 0.6) / 0.4)
    assert knowledge_transitions(v, q)["right2wrong"] == pytest.approx(2 / 3)
    d = delta_knowledge(*_pair([1, 1, 0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 1, 0]), StatsOptions(n_boot=100))
    assert d.ci_low is not None and d.ci_low <= d.value <= d.ci_high


def test_delta_knowledge_errors():
    v, q = _pair([1, 0], [0, 0, 1])
    with pytest.raises(DataError, match="different questions"):
        delta_knowledge(v, q)
    with pytest.raises(MetricUnavailable):
        delta_knowledge(*_pair([1, 0], [1, 1]))


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory, tasks):
    root = tmp_path_factory.mktemp("videommmu")
    tasks[0].synth(root, 0)
    return root


def test_load_generated(tasks, synth_root):
    task, qonly = tasks
    samples, qs = task.load_samples(synth_root), qonly.load_samples(synth_root)
    assert len(samples) == 12 and len({s.id for s in samples}) == 12
    assert {s.groups["track"] for s in samples} == {"Perception", "Comprehension", "Adaptation"}
    assert [s.id for s in qs] == [s.id for s in samples if s.groups["track"] == "Adaptation"]
    for s in samples + qs:
        assert (synth_root / s.video.path).is_file()
    assert sum(s.meta["format"] == "open" for s in samples) == 1
    assert all(s.meta["question_type"] is None for s in samples if s.groups["track"] != "Adaptation")
    again = task.load_samples(synth_root)
    assert [(s.id, s.answer) for s in again] == [(s.id, s.answer) for s in samples]


def test_prompts_are_official(tasks, synth_root):
    task, qonly = tasks
    samples = {s.id: s for s in task.load_samples(synth_root)}
    text = lambda t, s: t.build_messages(s, t.protocol)[-1].parts[1].text  # noqa: E731
    p = samples["Perception/dev_Math_1"]
    block = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(p.options))
    assert text(task, p) == p.question + "\n" + block + "\nPlease ignore the Quiz question in last frame of the video."
    a = samples["Adaptation/dev_Math_1"]
    assert text(task, a).startswith("You should watch and learn the video content. Then apply what you learned to "
                                    "answer the following multi-choice question. The image for this question is at "
                                    "the end of the video.\n" + a.question + "\nA. ")
    o = samples["Adaptation/validation_Physics_2"]
    assert text(task, o).endswith("answer the following open-ended question. The image for this question is at the "
                                  "end of the video.\n" + o.question)
    q = next(s for s in qonly.load_samples(synth_root) if s.id == "Adaptation/dev_Math_1")
    assert text(qonly, q) == q.question + "\n" + "\n".join(f"{chr(65 + i)}. {x}" for i, x in enumerate(q.options))
    assert task.protocol.nframes == 32 and task.protocol.max_new_tokens == 1024


def test_gold_answers_score_full(tasks, synth_root):
    task, _ = tasks
    recs = []
    for s in task.load_samples(synth_root):
        parsed = task.parser(None)(s.answer, s.options, s.meta)
        recs.append(Record(s.id, s.task, s.cluster, s.groups, s.answer, s.options, s.meta, "", "", (), s.answer,
                           parsed, "official", task.score(parsed, s.answer, s.meta)))
    agg = task.aggregate(recs, StatsOptions(n_boot=0))
    assert {m.name: m.value for m in agg.metrics}["Overall"] == 1.0


def test_loader_errors(tasks, tmp_path):
    with pytest.raises(DataError, match="not found"):
        tasks[0].load_samples(tmp_path)
