"""Video-MME (w/o subs): both extractor generations, the parquet loader, prompts, aggregation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vpbench.errors import DataError  # noqa: E402
from vpbench.parsers import videomme as P  # noqa: E402
from vpbench.registry import get_task  # noqa: E402
from vpbench.task import StatsOptions  # noqa: E402
from vpbench.types import Record  # noqa: E402

TASK = get_task("videomme")
MOD = __import__("vpbench_tasks.videomme.task", fromlist=["PARQUET"])
OPTS = ("A. Apples.", "B. Candles.", "C. Berries.", "D. The same.")
NOBOOT = StatsOptions(n_boot=0)

# response, official (Video-MME eval_your_results.py), vlmevalkit, lmms_eval 0.7.3
TABLE = [
    ("B", "B", "B", "B"),
    ("(B)", "B", "B", "B"),
    ("The answer is C.", "C", "C", "C"),
    ("The best answer is: D", "D", "D", "D"),
    ("</think> b", None, None, None),                 # lower-case b: neither generation accepts it
    ("<think>A or B</think> C", "A", "A", "C"),       # only lmms-eval strips reasoning blocks
    ("A man is walking", "A", "A", "A"),              # article-A pitfall (start-of-text in lmms-eval)
    ("", None, None, None),
    ("Dogs are running", "D", "D", "D"),              # first capital anywhere / lmms-eval's fallback
    ("Answer: C", "A", "C", "C"),                     # "Answer:" is a prefix only in VLMEvalKit
    ("Best option: C", "B", "B", "C"),                # fused official prefix "Best answer:Best option:"
    ("I think B, but the answer is D", "B", "B", "D"),  # first letter vs phrase/end priority
    ("Candles.", "C", "C", "C"),                      # option text instead of a letter
    ("the video shows a person who is walking slowly along the river bank", None, None, None),
    ("c", None, None, None),
]


@pytest.mark.parametrize("text,official,vlm,lmms", TABLE)
def test_parser_table(text, official, vlm, lmms):
    assert TASK.parser("official")(text, OPTS) == official
    assert TASK.parser("vlmevalkit")(text, OPTS) == vlm
    assert TASK.parser("lmms_eval")(text, OPTS) == lmms


def test_extractor_internals():
    assert P.OFFICIAL_PREFIXES[4] == "The best option isThe correct option is"
    assert P.extract_characters_regex("D " + "word " * 12) == "D"
    assert P.extract_characters_regex("x " * 11) == ""
    assert P.extract_mcq_answer("(A) or (B)") == "B"      # same format: the later position wins
    assert P.extract_mcq_answer("A. yes (C)") == "A"      # start of text (10) outranks "(C)" (6)
    assert P.extract_mcq_answer("yes (C) A. no") == "C"   # "(C)" (6) outranks "A." (5)
    assert P.extract_mcq_answer("B") == "B"
    assert TASK.default_parser == "official"


def test_score_contract():
    assert TASK.score("C", "C", {}) == {"acc": 1.0, "answered": 1.0}
    assert TASK.score("A", "C", {}) == {"acc": 0.0, "answered": 1.0}
    assert TASK.score(None, "C", {}) == {"acc": 0.0, "answered": 0.0}


# -- data --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("videomme")
    TASK.synth(out, 5)
    return out


def test_load_samples_native_layout(root):
    import pandas as pd

    df = pd.read_parquet(root / MOD.PARQUET)
    samples = TASK.load_samples(root)
    assert len(samples) == len(df) == 18
    assert [s.id for s in samples] == list(df["question_id"])
    assert [s.id for s in TASK.load_samples(root)] == [s.id for s in samples]
    assert {s.groups["duration"] for s in samples} == {"short", "medium", "long"}
    for s, (_, row) in zip(samples, df.iterrows()):
        assert s.options == tuple(row["options"]) and s.options[0].startswith("A. ")
        assert s.answer == row["answer"] and s.options["ABCD".index(s.answer)]
        assert s.cluster == row["videoID"] and s.video.path == f"{row['videoID']}.mp4"
        assert (root / "data" / s.video.path).is_file()
        assert s.groups == {"duration": row["duration"], "domain": row["domain"],
                            "sub_category": row["sub_category"], "task_type": row["task_type"]}
    assert {len([s for s in samples if s.cluster == c]) for c in {s.cluster for s in samples}} == {3}


def test_alternative_extensions_and_bad_rows(root, tmp_path):
    import pandas as pd

    df = pd.read_parquet(root / MOD.PARQUET)
    (tmp_path / "videomme").mkdir()
    (tmp_path / "data").mkdir()
    vid = df["videoID"][0]
    (tmp_path / "data" / f"{vid}.mkv").write_bytes(b"")
    df.to_parquet(tmp_path / MOD.PARQUET)
    s = TASK.load_samples(tmp_path)
    assert s[0].video.path == f"{vid}.mkv" and s[-1].video.path.endswith(".mp4")
    bad = df.copy()
    bad.loc[4, "question_id"] = bad.loc[3, "question_id"]
    bad.to_parquet(tmp_path / MOD.PARQUET)
    with pytest.raises(DataError, match=r"row 4.*duplicated"):
        TASK.load_samples(tmp_path)
    bad = df.copy()
    bad.loc[2, "duration"] = "tiny"
    bad.to_parquet(tmp_path / MOD.PARQUET)
    with pytest.raises(DataError, match=r"row 2.*duration 'tiny'"):
        TASK.load_samples(tmp_path)
    df.drop(columns=["task_type"]).to_parquet(tmp_path / MOD.PARQUET)
    with pytest.raises(DataError, match="missing column.*task_type"):
        TASK.load_samples(tmp_path)
    (tmp_path / MOD.PARQUET).unlink()
    with pytest.raises(DataError, match="lmms-lab/Video-MME"):
        TASK.load_samples(tmp_path)


def test_gold_responses_score_perfectly(root):
    for s in TASK.load_samples(root):
        for name in TASK.parsers:
            for reply in (s.answer, f"The best answer is {s.answer}.", f"({s.answer})"):
                assert TASK.score(TASK.parser(name)(reply, s.options), s.answer, s.meta)["acc"] == 1.0


def test_prompts(root):
    s = TASK.load_samples(root)[0]
    (user,) = TASK.build_messages(s, TASK.protocol)
    opts = "\n".join(s.options)
    assert user.parts[0].kind == "video"
    assert user.parts[1].text == (
        "Select the best answer to the following multiple-choice question based on the video. Respond with only "
        f"the letter (A, B, C, or D) of the correct option.\n{s.question}\n{opts}\nThe best answer is:")
    lm = MOD.protocol_preset("lmms_eval")
    text = TASK.build_messages(s, lm)[0].parts[1].text
    assert text.endswith(f"{opts}\n\nAnswer with the option's letter from the given choices directly.")
    assert "based on the video and the subtitles" in text
    assert (TASK.protocol.nframes, TASK.protocol.max_new_tokens, TASK.protocol.temperature) == (32, 16, 0.0)


# -- aggregation -------------------------------------------------------------------------------
def _rec(qid: str, duration: str, answer: str, response: str, cluster: str) -> Record:
    parsed = TASK.parser("official")(response, OPTS)
    return Record(sample_id=qid, task="videomme", cluster=cluster,
                  groups={"duration": duration, "domain": "Knowledge", "sub_category": "Law",
                          "task_type": "Counting Problem" if qid < "003" else "OCR Problems"},
                  answer=answer, options=OPTS, meta={}, request_fingerprint="r", protocol_fingerprint="p",
                  frame_timestamps_s=(), response=response, parsed=parsed, parser="official",
                  scores=TASK.score(parsed, answer, {}))


RECORDS = [
    _rec("001-1", "short", "A", "A", "v1"),
    _rec("001-2", "short", "B", "no idea", "v1"),      # nothing extracted: wrong, stays in the denominator
    _rec("002-1", "medium", "C", "The answer is C", "v2"),
    _rec("003-1", "long", "D", "B", "v3"),
    _rec("003-2", "long", "D", "(D)", "v3"),
]


def test_aggregate_overall_and_durations():
    agg = TASK.aggregate(RECORDS, NOBOOT)
    got = {m.name: m.value for m in agg.metrics}
    assert got["Overall"] == pytest.approx(3 / 5)
    assert got["answered_rate"] == pytest.approx(4 / 5)
    assert got["Overall (official: answered only)"] == pytest.approx(3 / 4)
    assert (agg.metrics[0].n, agg.metrics[0].n_clusters, agg.metrics[0].n_failed) == (5, 3, 1)
    assert [(m.name, m.value, m.n) for m in agg.by_group["duration"]] == [
        ("Short", 0.5, 2), ("Medium", 1.0, 1), ("Long", 0.5, 2)]
    assert [(m.name, m.value) for m in agg.by_group["task_type"]] == [
        ("OCR Problems", pytest.approx(1 / 2)), ("Counting Problem", pytest.approx(2 / 3))]
    assert TASK.primary_metric == "Overall"
