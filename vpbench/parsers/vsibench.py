"""VSI-Bench answer extractors.

``official`` (``vision-x-nyu/thinking-in-space@51e089c``, = lmms-eval before 2026-07-14):
``fuzzy_matching(pred) = pred.split(" ")[0].rstrip(".").strip()``, the first *space*-separated
token with trailing dots removed.

* MCA: the token is compared case-insensitively with the ground-truth letter, so "A", "A." and
  "a" are right and "(A)", "A)", "The answer is A" are wrong. vpbench returns the upper-cased
  letter when the token is one of the option letters and None otherwise: a non-letter token can
  never equal the ground-truth letter, so scores are identical to the official ones while
  ``answered`` becomes meaningful.
* NA: ``float(token)`` (Python ``float``: "3", "3.0", "1e2", " 3\\n" parse; "3m", "about",
  "</think>" do not). A token that does not parse scores 0 (the official ``TypeError`` path).
  The parsed value is ``repr(float)``.

``lmms_eval`` (lmms-eval ``eab6655a``, 2026-07-14 and later): MCA as above; NA uses
``extract_number``: the first number anywhere — the regex ``-?\\d+(?:\\.\\d+)?`` or a run of
English number words ("three hundred and twenty-one"), whichever starts first. It scores higher
than the official parser ("There are 3" → 3, "</think> 2.5" → 2.5).

The sample's ``meta["answer_type"]`` ("MCA" or "NA") selects the branch.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from vpbench.parsers.lmms_cli import lmms_eval_parser
from vpbench.task import Parser

_NUMBER_WORDS: Mapping[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "thousand": 1000,
}
_NUM_RE = re.compile(r"-?\d+(?:\.\d+)?")


def fuzzy_matching(pred: str) -> str:
    """Official: first token split on a single space, trailing '.' removed, then stripped."""
    return pred.split(" ")[0].rstrip(".").strip()


def option_letters(options: tuple[str, ...]) -> tuple[str, ...]:
    """Letters of the options in order: 'A', 'B', ... (options are 'A. chair' strings)."""
    return tuple(chr(ord("A") + i) for i in range(len(options)))


def to_float(text: str) -> float | None:
    """Official ``to_float``: ``float(text)`` or None when it raises."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def extract_number(text: str | None) -> float | None:
    """lmms-eval ``extract_number``: first digit literal or English number-word run, whichever first."""
    if text is None:
        return None
    s = str(text).strip().lower()
    if not s:
        return None
    digit = _NUM_RE.search(s)
    word_start: int | None = None
    words: list[str] = []
    for m in re.finditer(r"[a-z]+", s):
        tok = m.group(0)
        if word_start is None:
            if tok in _NUMBER_WORDS:
                word_start = m.start()
                words.append(tok)
        elif tok == "and":
            continue
        elif tok in _NUMBER_WORDS:
            words.append(tok)
        else:
            break
    if digit is not None and (word_start is None or digit.start() < word_start):
        return float(digit.group(0))
    if word_start is None:
        return None
    total, current = 0, 0
    for tok in words:
        val = _NUMBER_WORDS[tok]
        if val == 100:
            current = max(current, 1) * 100
        elif val == 1000:
            total += max(current, 1) * 1000
            current = 0
        else:
            current += val
    return float(total + current)


def parse_mca(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    """Official MCA extraction: the first token as an option letter (upper-cased), else None."""
    token = fuzzy_matching(text).upper()
    return token if token in option_letters(options) else None


def _answer_type(meta: Mapping[str, Any] | None) -> str:
    kind = (meta or {}).get("answer_type")
    if kind not in ("MCA", "NA"):
        raise ValueError(f"VSI-Bench parser needs meta['answer_type'] in ('MCA', 'NA'), got {kind!r}")
    return str(kind)


def parse_official(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    if _answer_type(meta) == "MCA":
        return parse_mca(text, options)
    value = to_float(fuzzy_matching(text))
    return None if value is None else repr(value)


def parse_lmms_eval(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    if _answer_type(meta) == "MCA":
        return parse_mca(text, options)
    value = extract_number(text)
    return None if value is None else repr(value)


PARSERS: Mapping[str, Parser] = {
    "official": Parser(
        "official", "thinking-in-space@51e089c", parse_official,
        "VSI-Bench official: first space token; MCA letter (case-insensitive), NA float(token)",
    ),
    "lmms_eval": lmms_eval_parser(
        parse_lmms_eval, "vsibench@eab6655a",
        "lmms-eval 2026-07 (= 0.7.3) vsibench: MCA as official; NA first number (digits or English words) anywhere",
    ),
}
