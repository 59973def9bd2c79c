"""VRU-Accident official cleaners (utils/utils.py: postprocessor), checked on hand-made outputs."""

from __future__ import annotations

import pytest

from vpbench.errors import ConfigError
from vpbench.parsers.vru import (
    CAPTION_PARSERS,
    OFFICIAL_MODEL_PARSERS,
    VQA_DEFAULT_PARSER,
    VQA_PARSERS,
    extract_single_choice,
    official_vqa_parser,
)


@pytest.mark.parametrize("text,expected", [
    ("B", "B"),
    ("B.", "B"),
    ("(C) urban", "C"),
    ("The answer is D. rural", "D"),          # first standalone capital A-D
    ("A cyclist. Answer: C", "A"),            # "A" as an article is a standalone A: the official quirk
    ("Answer:C", "C"),                        # \bC\b matches first (':' is a boundary)
    ("BD", None),                             # no standalone letter, no 'Answer:'
    ("b", None),                              # case-sensitive
    ("", None),
    ("E. none", None),
])
def test_extract_single_choice(text: str, expected: str | None) -> None:
    assert extract_single_choice(text) == expected


def test_answer_fallback_only_when_no_standalone_letter() -> None:
    # "Answer:Bx" has no standalone letter (B is followed by a word character), so only the
    # 'Answer:\s*\(?([A-D])\)?' fallback finds B; "Answerx: B" has a standalone B.
    assert extract_single_choice("Answer:Bx") == "B"
    assert extract_single_choice("Answer: (Bx") == "B"
    assert extract_single_choice("Answerx:Bx") is None


def test_qwen_uses_last_line_only() -> None:
    qwen = VQA_PARSERS["qwen"]
    assert qwen("A is tempting\nbut C") == "C"
    assert qwen("C\n") is None                 # the last line is empty
    assert VQA_PARSERS["internvl"]("A is tempting\nbut C") == "A"
    assert VQA_PARSERS["mobile_videogpt"]("x\nD") == "D"
    assert VQA_DEFAULT_PARSER == "qwen"


@pytest.mark.parametrize("name,text,expected", [
    ("llava_next_video", "USER: q ASSISTANT: B. sunny day", "B"),
    ("llava_next_video", "no marker here. more", "no marker here"),
    ("llava_video", "C. suburban", "C"),
    ("video_xl2", "D", "D"),
    ("video_xl_pro", " A. x", " A"),            # no strip: ' A'.strip().upper() is compared later
    ("gpt", "I cannot determine that.", "I cannot determine that"),
    ("llava_onevision", "user\nq\nassistant\nB. rural", "B"),
    ("gemini", "D. urban", "D. urban"),        # raw: scored wrong by exact comparison
])
def test_split_cleaners(name: str, text: str, expected: str) -> None:
    assert VQA_PARSERS[name](text) == expected


def test_parsers_are_versioned_and_named() -> None:
    for name, p in {**VQA_PARSERS, **{f"cap:{k}": v for k, v in CAPTION_PARSERS.items()}}.items():
        assert p.version and p.tag == f"{p.name}@{p.version}"
        assert name.split(":")[-1] == p.name


def test_caption_cleaners() -> None:
    assert CAPTION_PARSERS["raw"]("  text \n") == "  text \n"
    assert CAPTION_PARSERS["qwen"]("system\n...\nassistant\nA car turns.") == "A car turns."
    assert CAPTION_PARSERS["llava_next_video"]("USER: x ASSISTANT: A car turns.") == "A car turns."


def test_official_model_mapping() -> None:
    assert len(OFFICIAL_MODEL_PARSERS) == 17
    assert official_vqa_parser("Gemini_15_flash") == "gemini"
    assert official_vqa_parser("Qwen2_VL_2B") == "qwen"          # the official 'Qwen' in name branch
    assert official_vqa_parser("InternVL9_1B") == "internvl"
    assert all(v in VQA_PARSERS for v in OFFICIAL_MODEL_PARSERS.values())
    with pytest.raises(ConfigError, match="no official VRU-Accident parser"):
        official_vqa_parser("Unknown")


def test_vqa_answered_means_an_option_letter():
    from vpbench.registry import get_task

    score = get_task("vru_accident_vqa").score
    assert score("b ", "B", {}) == {"acc": 1.0, "answered": 1.0}
    assert score("I think the road", "B", {}) == {"acc": 0.0, "answered": 0.0}  # a raw cleaner's output
    assert score(None, "B", {}) == {"acc": 0.0, "answered": 0.0}
