"""MVBench: parsers vs the official scorers, loading the native layout, prompts, aggregation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vpbench.errors import DataError  # noqa: E402
from vpbench.parsers import mvbench as P  # noqa: E402
from vpbench.registry import get_task  # noqa: E402
from vpbench.task import StatsOptions  # noqa: E402
from vpbench.types import Record  # noqa: E402

TASK = get_task("mvbench")
MOD = __import__("vpbench_tasks.mvbench.task", fromlist=["TASKS"])
OPTS4 = ("A. w", "B. x", "C. y", "D. z")
NOBOOT = StatsOptions(n_boot=0)


def reference_check_ans(pred: str, gt: str) -> bool:
    """Verbatim logic of Ask-Anything video_chat2/mvbench.ipynb check_ans (gt = "(X) text")."""
    pred_list = pred.lower().split(" ")
    pred_option = pred_list[0]
    gt_list = gt.lower().split(" ")
    gt_option = gt_list[0]
    return pred_option.replace(".", "") in gt_option or gt_option in pred_option


# response, official, official_compat, vlmevalkit, lmms_eval  (4 options A-D)
TABLE = [
    ("B) Piling something up", "B", "B", "B", "B"),
    ("B", "B", "B", "B", "B"),
    ("(B)", "B", "B", "B", "B"),
    ("b.", "B", "B", "B", "B"),
    ("B. Piling something up", "B", "B", "B", "B"),
    ("C\nBecause the box moves.", "C", "C", None, "C"),      # notebook keeps the first line only
    ("The answer is C.", None, None, None, "C"),
    ("</think> b", None, None, None, "B"),                   # lmms-eval keeps the text after </think>
    ("<think>maybe A</think>D", None, None, None, "D"),
    ("A man is walking", "A", "A", "A", "A"),                # article-A pitfall, as in the references
    ("", None, "A|B|C|D", None, None),                       # Ask-Anything #126: empty scores correct
    (")", None, None, None, None),                           # "()" after the "(" prefix
    ("Piling something up", None, None, None, None),         # option text instead of a letter
    ("(a)(b)", None, "A|B", None, "A"),                      # accepted for two letters by check_ans
    ("E", None, None, None, "E"),                            # a letter beyond the options
    ("I think it is (d).", None, None, None, "D"),
]


@pytest.mark.parametrize("text,official,compat,vlm,lmms", TABLE)
def test_parser_table(text, official, compat, vlm, lmms):
    assert TASK.parser("official")(text, OPTS4) == official
    assert TASK.parser("official_compat")(text, OPTS4) == compat
    assert TASK.parser("vlmevalkit")(text, OPTS4) == vlm
    assert TASK.parser("lmms_eval")(text, OPTS4) == lmms


def test_vlmevalkit_lone_paren_quirk_is_dropped():
    # VLMEvalKit scores a lone ")" correct for every letter (Ask-Anything #227); we parse None.
    assert all(reference_check_ans(")", f"({x}) t") for x in "ABCD")
    assert TASK.parser("vlmevalkit")(")", OPTS4) is None


def test_default_parser_is_official():
    assert TASK.default_parser == "official"
    assert TASK.parser(None).tag == "official@askanything-mvbench.ipynb-check_ans"


@pytest.mark.parametrize("text", [t[0] for t in TABLE] + ["(c", "((D) x", ".", "d)", "(b)x", " B"])
def test_compat_parser_equals_reference_check_ans(text):
    """score(parse_official_compat(r)) == check_ans("(" + first line, "(X) ...") for every letter."""
    parsed = TASK.parser("official_compat")(text, OPTS4)
    pred = "(" + text.strip().split("\n")[0]
    for x in "ABCD":
        got = TASK.score(parsed, x, {})["acc"]
        assert got == float(reference_check_ans(pred, f"({x}) option text")), (text, x)
        # the default parser agrees wherever check_ans accepts exactly one letter
        if parsed is not None and "|" not in parsed:
            assert TASK.score(TASK.parser("official")(text, OPTS4), x, {})["acc"] == got


def test_strip_reasoning_tags_matches_lmms_eval_rules():
    assert P.strip_reasoning_tags("<think>a</think> B ") == "B"
    assert P.strip_reasoning_tags("x</think>y</think> C") == "C"
    assert P.strip_reasoning_tags("<think>unclosed B") == "<think>unclosed B"
    assert P.strip_reasoning_tags("<analysis>z</analysis>(A)") == "(A)"


def test_score_contract():
    assert TASK.score("B", "B", {}) == {"acc": 1.0, "answered": 1.0}
    assert TASK.score("C", "B", {}) == {"acc": 0.0, "answered": 1.0}
    assert TASK.score(None, "B", {}) == {"acc": 0.0, "answered": 0.0}
    assert TASK.score("A|B", "B", {}) == {"acc": 1.0, "answered": 1.0}


# -- data --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mvbench")
    TASK.synth(out, 3)
    return out


def test_load_samples_native_layout(root):
    samples = TASK.load_samples(root)
    assert len(samples) == 40
    assert {s.groups["task"] for s in samples} == set(MOD.TASKS)
    assert len({s.id for s in samples}) == 40
    assert [s.id for s in TASK.load_samples(root)] == [s.id for s in samples]
    for s in samples:
        _, _, prefix, media, clipped = MOD.TASKS[s.groups["task"]]
        cands = s.meta["candidates"]
        assert cands["ABCDE".index(s.answer)] == s.meta["answer_text"]
        assert s.options == tuple(f"{'ABCDE'[i]}. {c}" for i, c in enumerate(cands))
        assert s.video.path.startswith(prefix) and s.cluster == s.video.path
        assert (root / "video" / s.video.path).is_dir() == (media == "frames")
        assert (root / "video" / s.video.path).exists()
        assert (s.video.start_s is not None) == clipped
    # fields come straight from the official json
    rows = json.loads((root / "json" / "action_sequence.json").read_text())
    first = next(s for s in samples if s.groups["task"] == "action_sequence")
    assert (first.question, first.meta["candidates"], first.video.start_s, first.video.end_s) == (
        rows[0]["question"], rows[0]["candidates"], rows[0]["start"], rows[0]["end"])


def test_ids_do_not_depend_on_row_order(root, tmp_path):
    import shutil

    shutil.copytree(root / "json", tmp_path / "json")
    path = tmp_path / "json" / "moving_count.json"
    rows = json.loads(path.read_text())
    path.write_text(json.dumps(rows[::-1]))
    ids = {s.id for s in TASK.load_samples(root)}
    assert {s.id for s in TASK.load_samples(tmp_path)} == ids


def test_duplicate_rows_get_suffixes_and_bad_rows_fail(root, tmp_path):
    import shutil

    shutil.copytree(root / "json", tmp_path / "json")
    path = tmp_path / "json" / "action_count.json"
    rows = json.loads(path.read_text())
    twin = dict(rows[0], candidates=list(reversed(rows[0]["candidates"])))
    path.write_text(json.dumps(rows + [rows[0], twin]))
    ids = [s.id for s in TASK.load_samples(tmp_path) if s.groups["task"] == "action_count"]
    assert len(ids) == len(set(ids)) == 4
    assert sum(i.endswith("~2") for i in ids) == 1
    path.write_text(json.dumps([dict(rows[0], answer="not a candidate")]))
    with pytest.raises(DataError, match="action_count.json.*record 0.*not one of the candidates"):
        TASK.load_samples(tmp_path)
    path.unlink()
    with pytest.raises(DataError, match="json/action_count.json"):
        TASK.load_samples(tmp_path)


def test_clipped_rows_need_start_end(root, tmp_path):
    import shutil

    shutil.copytree(root / "json", tmp_path / "json")
    path = tmp_path / "json" / "action_localization.json"
    rows = json.loads(path.read_text())
    del rows[1]["end"]
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"action_localization.json \[record 1\].*start/end"):
        TASK.load_samples(tmp_path)


def test_gold_responses_score_perfectly(root):
    for s in TASK.load_samples(root):
        # with the "Best option:(" prefill the model continues e.g. "B) text"
        reply = f"{s.answer}) {s.meta['answer_text']}"
        for name in ("official", "lmms_eval", "vlmevalkit"):
            assert TASK.score(TASK.parser(name)(reply, s.options, s.meta), s.answer, s.meta)["acc"] == 1.0


# -- prompts -----------------------------------------------------------------------------------
def test_official_and_lmms_eval_prompts(root):
    s = next(x for x in TASK.load_samples(root) if len(x.options) == 3)
    c = s.meta["candidates"]
    sys_msg, user, prefill = TASK.build_messages(s, TASK.protocol)
    assert sys_msg.role == "system" and sys_msg.parts[0].text == MOD.SYSTEM
    assert user.parts[0].kind == "video"
    assert user.parts[1].text == (f"Question: {s.question}\nOptions:\n(A) {c[0]}\n(B) {c[1]}\n(C) {c[2]}\n"
                                  "Only give the best option.")
    assert (prefill.role, prefill.parts[0].text) == ("assistant", "Best option:(")
    assert (TASK.protocol.nframes, TASK.protocol.max_new_tokens) == (16, 100)
    lm = MOD.protocol_preset("lmms_eval")
    msgs = TASK.build_messages(s, lm)
    assert len(msgs) == 1 and msgs[0].role == "user"
    expected = "Question:" + s.question + "\nOption:\n" + "".join(
        f"({'ABC'[i]}) {o}\n" for i, o in enumerate(c)) + "Only give the best option.\n"
    assert msgs[0].parts[1].text == expected
    assert (lm.nframes, lm.max_new_tokens) == (32, 16)


# -- aggregation -------------------------------------------------------------------------------
def _rec(i: int, task: str, answer: str, response: str, cluster: str) -> Record:
    parsed = TASK.parser("official")(response, OPTS4)
    return Record(sample_id=f"{task}/{i}", task="mvbench", cluster=cluster, groups={"task": task}, answer=answer,
                  options=OPTS4, meta={}, request_fingerprint="r", protocol_fingerprint="p",
                  frame_timestamps_s=(), response=response, parsed=parsed, parser="official",
                  scores=TASK.score(parsed, answer, {}))


RECORDS = [
    _rec(1, "action_sequence", "B", "B) x", "v1"),      # right
    _rec(2, "action_sequence", "B", "C) y", "v1"),      # wrong
    _rec(3, "action_sequence", "B", "", "v2"),          # empty: wrong (and out of lmms-eval's denominator)
    _rec(4, "moving_count", "A", "A", "v3"),            # right
    _rec(5, "moving_count", "D", "<think>D?</think>", "v4"),  # empty after tag stripping; parsed None
]


def test_aggregate_keeps_unparsed_in_denominator():
    agg = TASK.aggregate(RECORDS, NOBOOT)
    got = {m.name: m.value for m in agg.metrics}
    assert got["Avg"] == pytest.approx(2 / 5)
    assert got["answered_rate"] == pytest.approx(3 / 5)
    assert got["Avg (empty responses excluded, as lmms-eval)"] == pytest.approx(2 / 3)
    avg = agg.metrics[0]
    assert (avg.n, avg.n_clusters, avg.n_failed) == (5, 4, 2)
    tasks = agg.by_group["task"]
    assert [(m.name, m.value, m.n) for m in tasks] == [("AS", pytest.approx(1 / 3), 3), ("MC", pytest.approx(1 / 2), 2)]
    assert TASK.primary_metric == "Avg"


def test_aggregate_lmms_eval_switch_excludes_empty_responses():
    agg = MOD.aggregate_lmms_eval(RECORDS, NOBOOT)
    got = {m.name: m.value for m in agg.metrics}
    assert got["Avg"] == pytest.approx(2 / 3)
    assert got["answered_rate"] == pytest.approx(3 / 5)
    assert [(m.name, m.value) for m in agg.by_group["task"]] == [("AS", pytest.approx(1 / 2)), ("MC", 1.0)]
    assert any("2 empty responses excluded" in n for n in agg.notes)
