"""MVBench answer extractors (official Ask-Anything ``check_ans`` and lmms-eval 0.7.3 ``mcq_acc``).

MVBench scores a *pair* (prediction, ground truth) rather than extracting a letter, so each
parser here returns the option letter(s) that the reference scorer would accept; the task's
``score`` then checks the ground-truth letter against them.

``official`` (default): ``OpenGVLab/Ask-Anything:video_chat2/mvbench.ipynb``. The model is
prompted with the assistant turn pre-filled with ``"Best option:("``; the notebook keeps the first
line of the stripped generation, prepends ``"("`` (``return_prompt``) and calls ``check_ans``:
``p = pred.lower().split(' ')[0]``; correct iff ``p.replace('.', '') in "(x)"`` or
``"(x)" in p`` for the ground-truth letter x. Degenerate predictions that ``check_ans`` accepts
for *every* letter (empty output → ``"("``, a lone ``")"``; Ask-Anything #126, #227) and
predictions accepted for several letters (``"(a)(b)"``) parse as None here (wrong, unanswered).

``official_compat``: the same ``check_ans`` with its quirks kept: returns every accepted letter
joined by ``"|"`` (an empty output gives ``"A|B|C|D"`` and scores correct).

``vlmevalkit``: ``open-compass/VLMEvalKit:vlmeval/dataset/utils/mvbench.py: check_ans`` on the raw
prediction (no ``"("`` prefix, no first-line cut; exact-matching mode, no LLM judge); same
degenerate-case rule as ``official``.

``lmms_eval``: lmms-eval 0.7.3 — reasoning blocks stripped with the CLI's default
``--reasoning_tags`` (``<think>…</think>``, ``<analysis>…</analysis>``; a lone closing tag keeps
the text after it), then ``mcq_acc``'s ``process()``: ``^([A-E])\\.\\s*(.+)$`` → letter; else VQA
punctuation cleanup, lower-case, first ``\\b[A-E]\\b``. Pitfall kept on purpose: the article in
"A man is walking" parses as option A (the official scorer does the same).
"""

from __future__ import annotations

import re
import string
from typing import Any, Mapping, Sequence

from vpbench.parsers.lmms_cli import DEFAULT_REASONING_TAGS, lmms_eval_parser, strip_reasoning_tags  # noqa: F401 (re-exported)
from vpbench.task import Parser

_DEGENERATE = {"", "(", ")"}


def option_letters(options: Sequence[str], default: int = 5) -> str:
    """Letters of the sample's options ("ABC" for 3 options); ``default`` letters when unknown."""
    return string.ascii_uppercase[: len(options) or default]


def check_ans(pred: str, gt_letter: str, *, strip: bool = False) -> bool:
    """``check_ans(pred, gt)`` with ``gt = "(x) ..."``: True iff the reference scores ``pred`` correct.

    ``strip=False`` is the Ask-Anything notebook (``pred.lower().split(' ')``); ``strip=True``
    VLMEvalKit (``pred.lower().strip().split(' ')``).
    """
    text = pred.lower()
    if strip:
        text = text.strip()
    pred_option = text.split(" ")[0]
    gt_option = f"({gt_letter.lower()})"
    return pred_option.replace(".", "") in gt_option or gt_option in pred_option


def accepted_letters(pred: str, letters: str, *, strip: bool = False) -> str:
    """The option letters (upper-case, in order) for which :func:`check_ans` returns True."""
    return "".join(x for x in letters if check_ans(pred, x, strip=strip))


def _degenerate(pred: str, strip: bool) -> bool:
    text = pred.lower().strip() if strip else pred.lower()
    return text.split(" ")[0].replace(".", "") in _DEGENERATE


def notebook_prediction(text: str) -> str:
    """What the notebook scores: ``"(" + text.strip().split('\\n')[0]`` (``return_prompt='('``)."""
    return "(" + text.strip().split("\n")[0]


def parse_official(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    pred = notebook_prediction(text)
    if _degenerate(pred, strip=False):
        return None
    got = accepted_letters(pred, option_letters(options))
    return got if len(got) == 1 else None


def parse_official_compat(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    got = accepted_letters(notebook_prediction(text), option_letters(options))
    return "|".join(got) if got else None


def parse_vlmevalkit(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    if _degenerate(text, strip=True):
        return None
    got = accepted_letters(text, option_letters(options), strip=True)
    return got if len(got) == 1 else None


# -- lmms-eval 0.7.3 mcq_acc --------------------------------------------------------------------
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: a lookahead, as in lmms-eval
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_OPTION_RE = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_LETTER_RE = re.compile(r"\b([A-E])\b", re.IGNORECASE)


def _process_punctuation(in_text: str) -> str:
    out = in_text
    for p in _PUNCT:
        if (p + " " in in_text or " " + p in in_text) or (re.search(_COMMA_STRIP, in_text) is not None):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # lmms-eval passes re.UNICODE (=32) positionally, i.e. as ``count``: at most 32 periods go.
    return _PERIOD_STRIP.sub("", out, 32)


def mcq_process(answer: str) -> str:
    """lmms-eval 0.7.3 ``mvbench/utils.py: mcq_acc.process`` (a letter A-E, or the cleaned text)."""
    match = _OPTION_RE.match(answer.strip())
    if match:
        return match.group(1).upper()
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    answer = _process_punctuation(answer)
    answer = answer.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = _LETTER_RE.search(answer)
    return letter.group(1).upper() if letter else answer


def parse_lmms_eval(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    got = mcq_process(strip_reasoning_tags(text))
    return got if len(got) == 1 and got in "ABCDE" else None


PARSERS: dict[str, Parser] = {
    "official": Parser("official", "askanything-mvbench.ipynb-check_ans", parse_official,
                       "Ask-Anything check_ans on '(' + first line; empty/')' and multi-letter → None"),
    "official_compat": Parser("official_compat", "askanything-mvbench.ipynb-check_ans-quirks", parse_official_compat,
                              "Ask-Anything check_ans with its quirks (empty output scores correct)"),
    "vlmevalkit": Parser("vlmevalkit", "vlmevalkit-e8e78f0-check_ans", parse_vlmevalkit,
                         "VLMEvalKit check_ans (exact matching, raw prediction)"),
    "lmms_eval": lmms_eval_parser(parse_lmms_eval, "mvbench-mcq_acc@0.7.3", "mvbench mcq_acc process()"),
}
