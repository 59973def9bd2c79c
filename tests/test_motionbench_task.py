import json

import pytest

from vpbench.errors import DataError
from vpbench.protocol import Protocol
from vpbench.registry import get_task

TASK = get_task("motionbench")


@pytest.mark.parametrize("text, expected", [
    ("B", "B"),
    ("(B) two flashes", "B"),
    ("B. two", "B"),
    ("C) right", "C"),
    ("  D  ", "D"),
    ("The answer is C.", "T"),  # official polish_answer takes the first character: wrong on purpose
    ("</think> b", "<"),
    ("b", "b"),                 # not upper-cased: "b" != "B" under the official comparison
    ("", None),
    ("   ", None),
])
def test_official_parser(text, expected):
    assert TASK.parser("official")(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("B", "B"),
    ("(B) two flashes", "B"),
    ("The answer is C.", "C"),
    ("</think> b", "B"),
    ("<think>maybe A</think>The best answer is D", "D"),
    ("A man walks to the left", "A"),  # lmms-eval caveat kept: the article parses as option A
    ("Answer: e", "E"),
    ("", None),
    ("none of these", "E"),            # any [A-F] fallback: 'NONE OF THESE' contains E
    ("xyz 123", None),
])
def test_lmms_eval_parser(text, expected):
    assert TASK.parser("lmms_eval")(text) == expected


def test_unknown_parser_suggests():
    with pytest.raises(Exception, match="did you mean 'official'"):
        TASK.parser("oficial")


def test_load_samples_official_layout(motionbench_root):
    samples = TASK.load_samples(motionbench_root)
    assert [s.id for s in samples] == ["qa1", "qa2_1", "qa3", "qa4", "qa5"]
    s1 = samples[0]
    assert s1.options == ("A. 1", "B. 2", "C. 3")
    assert s1.answer == "B" and s1.cluster == "vidA"
    assert s1.groups["question_type"] == "RC"
    assert s1.video.path == "self-collected/vidA.mp4"
    hidden = samples[-1]
    assert hidden.answer is None and hidden.meta["split"] == "test"


def test_prompt_is_stem_options_post_prompt(motionbench_root):
    s = TASK.load_samples(motionbench_root)[2]
    msgs = TASK.build_messages(s, TASK.protocol)
    assert [p.kind for p in msgs[-1].parts] == ["video", "text"]
    assert msgs[-1].parts[1].text == (
        "Which way does the camera pan?\nA. left\nB. up\nC. right\nD. down\n"
        "Answer with only the option letter (A, B, C, D, E, or F).")


def test_bad_rows_name_file_and_line(tmp_path):
    root = tmp_path / "mb"
    root.mkdir()
    (root / "video_info.meta.jsonl").write_text(json.dumps({"key": "x"}) + "\n")
    with pytest.raises(DataError, match=r"video_info.meta.jsonl:1"):
        TASK.load_samples(root)
    with pytest.raises(DataError, match="not found"):
        TASK.load_samples(tmp_path / "nowhere")


def test_score_is_case_sensitive_exact_match():
    assert TASK.score("B", "B", {}) == {"acc": 1.0, "answered": 1.0}
    assert TASK.score("b", "B", {}) == {"acc": 0.0, "answered": 1.0}
    assert TASK.score(None, "B", {}) == {"acc": 0.0, "answered": 0.0}


def test_default_protocol_is_the_papers_1fps():
    assert TASK.protocol.fps == 1.0 and TASK.protocol.nframes is None
    assert isinstance(TASK.protocol, Protocol)


@pytest.mark.parametrize("bad", ["E", "b", "", None])
def test_answers_must_be_option_letters_or_na(tmp_path, bad):
    rows = [{"question_type": "Camera Motion", "video_type": "x", "key": "v",
             "qa": [{"uid": "u1", "start": None, "end": None, "answer": bad, "question": "Q?\nA. l\nB. r"}],
             "video_path": "v.mp4"}]
    root = tmp_path / "mb"
    root.mkdir()
    (root / "video_info.meta.jsonl").write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(DataError, match="neither an option letter"):
        TASK.load_samples(root)
