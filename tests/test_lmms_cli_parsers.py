"""Every task's ``lmms_eval`` parser applies lmms-eval 0.7.3's CLI post-processing (reasoning tags
and surrounding whitespace stripped) before its extractor, and says so in its version tag.
The differential check against lmms-eval's own functions is tests/test_lmms_parsers.py (tox -e lmms)."""

from __future__ import annotations

import pytest

from vpbench.parsers.lmms_cli import strip_reasoning_tags
from vpbench.registry import get_task, task_names

MODE_TASKS = [n for n in task_names() if "lmms_eval" in get_task(n).parsers]
META = {"vsibench": {"answer_type": "MCA"}}


def test_the_mode_exists_where_expected() -> None:
    assert MODE_TASKS == ["motionbench", "mvbench", "videomme", "vsibench"]


@pytest.mark.parametrize("name", MODE_TASKS)
def test_reasoning_blocks_are_stripped_uniformly(name: str) -> None:
    p = get_task(name).parser("lmms_eval")
    assert p.version.startswith("lmms-eval-0.7.3-cli+"), p.version
    opts = ("A. red", "B. green", "C. blue", "D. pink")
    meta = META.get(name, {})
    assert p("B", opts, meta) == "B"
    for wrapped in ("<think>A maybe, or C</think>B", "  <analysis>D?</analysis>\n B \n", "so A... C</think> B",
                    "<think>x</think><analysis>A</analysis>B"):
        assert p(wrapped, opts, meta) == "B", (name, wrapped)


def test_strip_reasoning_tags_by_hand() -> None:
    assert strip_reasoning_tags("<think>a</think> b <think>c</think>d ") == "b d"
    assert strip_reasoning_tags("reasoning</think>x</think> y") == "y"  # a lone closing tag: after the last
    assert strip_reasoning_tags("<think>unclosed B") == "<think>unclosed B"  # left untouched
    assert strip_reasoning_tags("<THINK>A</THINK> B") == "<THINK>A</THINK> B"  # case-sensitive
