"""VideoMMMU answer extraction and per-item correctness (official semantics).

Reference: ``EvolvingLMMs-Lab/lmms-eval@74b6d95c`` (2025-02-08, the release that produced the
VideoMMMU paper and leaderboard numbers; unchanged until 2026-04-11) ``tasks/videommmu/utils.py``.

Multiple choice (``parse_multi_choice``, MMMU-style):
  1. an empty response (or the literal "API Error") → ``"API Error"`` (official: dropped from the
     denominator);
  2. strip ``, . ! ? ; : '`` from both ends (one character class after the other), pad with spaces;
  3. candidates ``X.`` and ``X:`` (both scanned); else ``(X)``; else ``X `` (letter + space); else,
     for responses of more than 5 words, options whose text occurs in the response
     (case-insensitive);
  4. several candidates: the one whose last occurrence (of the matched form) is latest;
  5. none: ``"No Answer Found."`` (wrong; the original MMMU picked a random letter, this does not).
  Correct iff the letter equals the answer letter.

Open questions (``parse_open_response``): lower-cased response split on newlines (the official
sentence split ``\\.\\s(?=[A-Z])`` runs after lower-casing, so it never fires); in each piece the
shortest tail after an indicator ("is ", "so ", "answer ", …; "=" in the last piece); every number
in those tails is added; everything is normalised (numbers: commas removed, ``round(float, 2)``;
strings lower-cased, one-character strings padded to ``[" x", "x "]``). Correct iff any normalised
gold string is a substring of a predicted string or a gold number equals a predicted number.

vpbench stores the open prediction list as JSON (sorted, so it is stable) in ``Record.parsed``; a
parsed value starting with "[" is scored as open, anything else as a choice letter.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

import numpy as np

from vpbench.task import Parser

API_ERROR = "API Error"
NO_ANSWER = "No Answer Found."

_INDICATORS: tuple[str, ...] = (
    "could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ", "are ",
    "in total ", "total ", "identify ", "recognize ", "calculated as ", "counted as ", "measured as ",
    "observed as ", "concluded as ", "found to be ", "equals ", "determined to be ", "number of ",
    "value is ", "adds up to ", "have ", "has ",
)
_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}


def multi_choice_info(options: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """(index2ans {'A': option text, ...}, all_choices ['A', 'B', ...])."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    return dict(zip(letters, options)), letters


def parse_multi_choice(response: str, all_choices: Sequence[str], index2ans: Mapping[str, str]) -> str:
    """Official MC parser: a letter, ``"API Error"`` (empty response) or ``"No Answer Found."``."""
    if response == API_ERROR or response == "":
        return API_ERROR
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(ch)
    response = " " + response + " "
    index_ans, with_brack, with_period, with_colon = True, False, False, False
    candidates: list[str] = []
    for c in all_choices:
        if f"{c}." in response:
            candidates.append(c)
            with_period = True
    for c in all_choices:
        if f"{c}:" in response:
            candidates.append(c)
            with_colon = True
    if not candidates:
        for c in all_choices:
            if f"({c})" in response:
                candidates.append(c)
                with_brack = True
    if not candidates:
        for c in all_choices:
            if f"{c} " in response:
                candidates.append(c)
    if not candidates and len(response.split()) > 5:
        for c, ans in index2ans.items():
            if ans.lower() in response.lower():
                candidates.append(c)
                index_ans = False
    if not candidates:
        return NO_ANSWER
    if len(candidates) == 1:
        return candidates[0]
    if index_ans:
        if with_period:
            starts = [response.rfind(f"{c}.") for c in candidates]
        elif with_colon:
            starts = [response.rfind(f"{c}:") for c in candidates]
        elif with_brack:
            starts = [response.rfind(f"({c})") for c in candidates]
        else:
            starts = [response.rfind(f" {c} ") for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[int(np.argmax(starts))]


def extract_numbers(text: str) -> list[str]:
    """Numbers with thousands commas, then scientific notation, then plain numbers (official order)."""
    commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", text)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", text)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", text)
    return commas + scientific + simple


def check_is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(text: str) -> list[str | float]:
    """Official ``normalize_str``: a number → [round(float, 2)]; a string → [lower] or [" x", "x "]."""
    text = text.strip()
    if check_is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


def _key_subresponses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    pieces = re.split(r"\.\s(?=[A-Z])|\n", response)
    indicators = list(_INDICATORS)
    keys: list[str] = []
    for i, piece in enumerate(pieces):
        if i == len(pieces) - 1:
            indicators.append("=")
        shortest: str | None = None
        for ind in indicators:
            if ind in piece:
                tail = piece.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            keys.append(shortest)
    return keys or [response]


def parse_open_response(response: str) -> list[str | float] | str:
    """Official open parser: the normalised prediction list, or ``"API Error"`` for an empty response."""
    if response == API_ERROR or response == "":
        return API_ERROR
    keys = _key_subresponses(response)
    preds: list[str] = list(keys)
    for k in keys:
        preds.extend(extract_numbers(k))
    out: list[str | float] = []
    for p in preds:
        out.extend(normalize_str(p))
    return list(dict.fromkeys(out))


def eval_open(gold: str | Sequence[str], preds: Sequence[str | float]) -> bool:
    """Official ``eval_open``: gold substring of a predicted string, or gold number == predicted number."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    norm: list[str | float] = []
    for g in golds:
        norm.extend(normalize_str(g))
    for p in preds:
        if isinstance(p, str):
            if any(isinstance(n, str) and n in p for n in norm):
                return True
        elif p in norm:
            return True
    return False


# -- vpbench parser/score adapters -------------------------------------------------------------


def encode_open(preds: Sequence[str | float]) -> str:
    """JSON list with a stable order (strings first, then numbers, each sorted)."""
    strs = sorted(p for p in preds if isinstance(p, str))
    nums = sorted(float(p) for p in preds if not isinstance(p, str))
    return json.dumps(strs + nums, ensure_ascii=False)


def decode_open(parsed: str) -> list[str | float]:
    return list(json.loads(parsed))


def _parse(text: str, options: tuple[str, ...], is_mc: bool) -> str | None:
    if is_mc:
        index2ans, choices = multi_choice_info(options)
        got = parse_multi_choice(text, choices, index2ans)
        return None if got in (API_ERROR, NO_ANSWER) else got
    preds = parse_open_response(text)
    return None if preds == API_ERROR else encode_open(preds)  # type: ignore[arg-type]


def parse_official(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    """MC when ``question_type == "multiple-choice"`` or when it is missing and the row has options."""
    m = meta or {}
    qtype = m.get("question_type")
    is_mc = qtype == "multiple-choice" or (qtype is None and len(options) > 0)
    return _parse(text, options, is_mc)


def parse_lmms_eval_literal(
    text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None
) -> str | None:
    """lmms-eval's literal rule: MC only when ``question_type == "multiple-choice"``; every other
    row (including rows without the field) goes through the open parser."""
    return _parse(text, options, (meta or {}).get("question_type") == "multiple-choice")


def is_correct(parsed: str | None, answer: str) -> bool:
    """Official correctness of a vpbench-parsed value (None = unparsed / empty = wrong)."""
    if parsed is None:
        return False
    if parsed.startswith("["):
        return eval_open(answer, decode_open(parsed))
    return parsed == answer


PARSERS: Mapping[str, Parser] = {
    "official": Parser(
        "official", "lmms-eval@74b6d95c+options-mc", parse_official,
        "VideoMMMU release parser (MMMU-style MC letters, open numbers/strings); rows with options "
        "and no question_type are MC",
    ),
    "lmms_eval_literal": Parser(
        "lmms_eval_literal", "lmms-eval@74b6d95c", parse_lmms_eval_literal,
        "as official, but rows without question_type=='multiple-choice' use the open parser (lmms-eval code)",
    ),
}
