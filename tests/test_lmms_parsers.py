"""Differential check (``tox -e lmms``): every ``lmms_eval`` parser mode against lmms-eval 0.7.3's
own functions on a generated corpus of tricky responses.

lmms-eval's pipeline for one response is ``strip_reasoning_tags(text, CLI default tags)`` (the
evaluator) followed by the task's scorer; vpbench's ``lmms_eval`` parser + the task's ``score``
must give the same verdict for every response and every reference letter (and, for VSI-Bench
numeric answers, the same number). Nothing of lmms-eval is copied: it is imported here only.
"""

from __future__ import annotations

import itertools
import random

import pytest

from vpbench.registry import get_task

pytestmark = pytest.mark.lmms

TAGS = [["<think>", "</think>"], ["<analysis>", "</analysis>"]]
ANSWERS = ["A", "b", "(C)", "D.", "E)", "Answer: B", "The answer is C.", "THE BEST ANSWER IS D", "option a",
           "B. green", "(B) green", "Dogs", "I think it is A or B", "none", "", "  ", "3", "three", "2.5 meters",
           "twenty-one boxes", "-4", "There are 7", "A\nB", "é C", "\ud800 A", "F", "1e2"]
WRAPS = ["{}", "  {}  \n", "<think>maybe A</think>{}", "<think>x</think> <analysis>D</analysis>{}",
         "so C... </think>{}", "</think></think>{}", "<think>unclosed {}", "<THINK>A</THINK>{}",
         "{}<think>B</think>", "<analysis>{}", "Reasoning: E. </analysis> {}"]


def corpus(n: int = 600, seed: int = 0) -> list[str]:
    texts = [w.format(a) for w, a in itertools.product(WRAPS, ANSWERS)]
    rng = random.Random(seed)
    for _ in range(n):  # random concatenations of the same pieces
        texts.append(rng.choice(WRAPS).format(rng.choice(ANSWERS) + rng.choice(["", " ", "\n"]) + rng.choice(ANSWERS)))
    return texts


def lmms_strip(text: str) -> str:
    from lmms_eval.api.reasoning import strip_reasoning_tags

    return strip_reasoning_tags(text, TAGS)


def test_motionbench() -> None:
    from lmms_eval.tasks.motionbench.utils import _extract_choice_letter

    p, task = get_task("motionbench").parser("lmms_eval"), get_task("motionbench")
    for text in corpus():
        theirs = _extract_choice_letter(lmms_strip(text))
        assert (p(text) or "") == theirs, repr(text)
        for gt in "ABCDEF":
            assert task.score(p(text), gt, {})["acc"] == float(bool(theirs) and theirs == gt), repr(text)


def test_mvbench() -> None:
    from lmms_eval.tasks.mvbench.utils import mcq_acc

    p, task = get_task("mvbench").parser("lmms_eval"), get_task("mvbench")
    for text in corpus():
        for gt in "ABCDE":
            assert task.score(p(text), gt, {})["acc"] == float(mcq_acc(gt, lmms_strip(text))), (repr(text), gt)


def test_videomme() -> None:
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    p = get_task("videomme").parser("lmms_eval")
    for text in corpus():
        assert (p(text) or "") == extract_mcq_answer(lmms_strip(text), ["A", "B", "C", "D"]), repr(text)


def test_vsibench() -> None:
    from lmms_eval.tasks.vsibench.utils import exact_match, extract_number, fuzzy_matching

    p, task = get_task("vsibench").parser("lmms_eval"), get_task("vsibench")
    opts = ("A. left", "B. right", "C. front", "D. back")
    for text in corpus():
        for gt in "ABCD":
            mine = task.score(p(text, opts, {"answer_type": "MCA"}), gt, {"answer_type": "MCA"})["score"]
            assert mine == exact_match(fuzzy_matching(lmms_strip(text)), gt), (repr(text), gt)
        number = extract_number(lmms_strip(text))
        parsed = p(text, (), {"answer_type": "NA"})
        assert (None if parsed is None else float(parsed)) == number, repr(text)
