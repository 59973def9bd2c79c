"""Video-MME answer extractors: the two generations that produce different scores (lmms-eval #1541).

``official`` (default): ``BradyFU/Video-MME:evaluation/eval_your_results.py:
extract_characters_regex``, identical to lmms-eval's ``videomme/utils.py`` before PR #1274
(2026-04-11) and to VideoLLaMA2's copy. Strip; delete the answer prefixes *anywhere* in the
text (two pairs are fused by missing commas: "The best option isThe correct option is" and
"Best answer:Best option:"); if more than 10 words and no capital A-D, nothing; else the *first*
capital A, B, C or D anywhere ("Dogs" → D). No reasoning-tag stripping.

``vlmevalkit``: ``open-compass/VLMEvalKit:vlmeval/dataset/utils/videomme.py`` — the same with the
extra prefixes "Answer:" and "Option:".

``lmms_eval``: lmms-eval 0.7.3 — reasoning blocks stripped (CLI default tags, see
:func:`vpbench.parsers.mvbench.strip_reasoning_tags`), then
``lmms_eval/tasks/_task_utils/mcq_extract.py: extract_mcq_answer(s, choices=["A","B","C","D"])``:
a ranked, case-sensitive candidate search (start 10 > end 9 > phrase 7 > "(A)" 6 > "A." 5 >
"A:" 4 > "A)" 3 > "A " 2 > any occurrence 0, ties → later position).

An empty extraction ("") is returned as None (unanswered, scored wrong).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from vpbench.parsers.lmms_cli import lmms_eval_parser, strip_reasoning_tags
from vpbench.task import Parser

OFFICIAL_PREFIXES: tuple[str, ...] = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is" "The correct option is",  # fused on purpose (official typo)
    "Best answer:" "Best option:",  # fused on purpose (official typo)
)
VLMEVALKIT_PREFIXES: tuple[str, ...] = OFFICIAL_PREFIXES + ("Answer:", "Option:")


def extract_characters_regex(s: str, prefixes: Sequence[str] = OFFICIAL_PREFIXES) -> str:
    """The official extractor: first capital A-D after prefix removal, or ""."""
    s = s.strip()
    for prefix in prefixes:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    m = re.search(r"[ABCD]", s)
    return m[0] if m else ""


# -- lmms-eval 0.7.3 mcq_extract -----------------------------------------------------------------
ANSWER_PHRASES: tuple[str, ...] = (
    "the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
    "best answer is", "the correct option is", "correct option is", "the best option is", "best option is",
    "the choice is", "choice is", "the correct choice is", "correct choice is", "i choose", "i select",
    "i pick", "my answer is", "my choice is", "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは",
)
_PRIORITY = {"start": 10, "end": 9, "phrase": 7, "parentheses": 6, "period": 5, "colon": 4,
             "right_paren": 3, "space": 2, "fallback": 0}


def extract_mcq_answer(response: str, choices: Sequence[str] = ("A", "B", "C", "D")) -> str:
    """lmms-eval 0.7.3 ``extract_mcq_answer``: best-ranked choice letter, or ""."""
    if not response or not response.strip():
        return ""
    text = response.strip()
    for char in [",", ".", "!", "?", ";", ":", "'", '"']:
        text = text.strip(char)
    text = " " + text + " "
    cands: list[tuple[str, int, str]] = []
    for fmt, pattern in (("parentheses", "({})"), ("period", "{}."), ("colon", "{}:"),
                         ("right_paren", "{})"), ("space", "{} ")):
        for ch in choices:
            needle = pattern.format(ch)
            if needle in text:
                cands.append((ch, text.rfind(needle), fmt))
    lower = text.lower()
    for phrase in ANSWER_PHRASES:
        idx = lower.find(phrase)
        if idx != -1:
            after = idx + len(phrase)
            for ch in choices:
                pos = text.find(ch, after)
                if pos != -1:
                    cands.append((ch, pos, "phrase"))
    stripped = text.strip()
    for ch in choices:
        if stripped.startswith(ch) and (len(stripped) == 1 or not stripped[1].isalpha()):
            cands.append((ch, 0, "start"))
    for ch in choices:
        if stripped.endswith(ch) and (len(stripped) == 1 or not stripped[-2].isalpha()):
            cands.append((ch, len(text) - 1, "end"))
    if not cands:
        for ch in choices:
            if ch in text:
                cands.append((ch, text.rfind(ch), "fallback"))
    if not cands:
        return ""
    cands.sort(key=lambda c: (_PRIORITY.get(c[2], 0), c[1]), reverse=True)
    return cands[0][0]


def parse_official(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    return extract_characters_regex(text) or None


def parse_vlmevalkit(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    return extract_characters_regex(text, VLMEVALKIT_PREFIXES) or None


def parse_lmms_eval(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    return extract_mcq_answer(strip_reasoning_tags(text)) or None


PARSERS: dict[str, Parser] = {
    "official": Parser("official", "videomme-eval_your_results-4e7566d", parse_official,
                       "Video-MME official extract_characters_regex (= lmms-eval before 2026-04-11)"),
    "vlmevalkit": Parser("vlmevalkit", "vlmevalkit-e8e78f0-extract_characters_regex", parse_vlmevalkit,
                         "VLMEvalKit extract_characters_regex (+ 'Answer:', 'Option:' prefixes)"),
    "lmms_eval": lmms_eval_parser(parse_lmms_eval, "mcq_extract@0.7.3", "ranked extract_mcq_answer (A-D)"),
}
