"""MotionBench answer extractors.

``official``: ``THUDM/MotionBench:motionbench/utils/answer_util.py: polish_answer`` semantics —
strip, cut at the first ")", keep what follows "(", cut at the first space, take the first
character, *no* upper-casing. "The answer is B" therefore becomes "T" (wrong), as on the
leaderboard.

``lmms_eval``: lmms-eval 0.7.3 ``_extract_choice_letter`` — text after the last ``</think>``,
upper-cased, answer prefixes removed, first ``\\b[A-F]\\b``, else ``[A-F][.):]``, else any
``[A-F]``. Caveat kept on purpose: the article "A" in "A man ..." parses as option A.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from vpbench.parsers.lmms_cli import lmms_eval_parser
from vpbench.task import Parser

_PREFIXES = ("THE BEST ANSWER IS", "THE CORRECT ANSWER IS", "THE ANSWER IS", "BEST ANSWER:", "ANSWER:")


def polish_answer(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    s = text.strip()
    s = s.split(")")[0].strip()
    if "(" in s:
        s = s.split("(")[1].strip()
    s = s.split(" ")[0]
    return s[0] if s else None


def lmms_eval_choice(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
    s = text.split("</think>")[-1].upper()
    for prefix in _PREFIXES:
        s = s.replace(prefix, "")
    for pattern in (r"\b([A-F])\b", r"([A-F])[.):]", r"([A-F])"):
        m = re.search(pattern, s)
        if m:
            return m.group(1)
    return None


PARSERS = {
    "official": Parser("official", "motionbench-polish_answer@dcc9b07", polish_answer,
                       "THUDM/MotionBench polish_answer (first character, case-sensitive)"),
    "lmms_eval": lmms_eval_parser(lmms_eval_choice, "motionbench@0.7.3",
                                  "lmms-eval 0.7.3 motionbench _extract_choice_letter"),
}
