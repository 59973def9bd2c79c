"""lmms-eval's CLI response post-processing, applied by every ``lmms_eval`` parser mode.

lmms-eval 0.7.3's evaluator strips reasoning blocks (its ``--reasoning_tags`` default:
``<think>…</think>``, ``<analysis>…</analysis>``; a lone closing tag keeps the text after it) and
surrounding whitespace from every response before any task's scorer sees it
(``lmms_eval/evaluator.py: _process_document_results`` → ``api/reasoning.py: strip_reasoning_tags``).
``lmms_eval_parser`` wraps a task's lmms-eval extractor with that step, so the mode is uniform
across tasks, and tags the parser with the lmms-eval version whose CLI it reproduces plus the
revision of the task code it reproduces. ``tox -e lmms`` checks every such parser against
lmms-eval's own functions (tests/test_lmms_parsers.py).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from vpbench.task import ParseFn, Parser

LMMS_EVAL_VERSION = "0.7.3"

DEFAULT_REASONING_TAGS: tuple[tuple[str, str], ...] = (("<think>", "</think>"), ("<analysis>", "</analysis>"))
"""lmms-eval 0.7.3 ``--reasoning_tags`` default (``lmms_eval/__main__.py``)."""

def strip_reasoning_tags(text: str, tag_pairs: Sequence[tuple[str, str]] = DEFAULT_REASONING_TAGS) -> str:
    """lmms-eval 0.7.3 ``lmms_eval/api/reasoning.py: strip_reasoning_tags`` (case-sensitive).

    Removes every closed ``start…end`` block; if only the closing tag remains, keeps the text
    after its last occurrence; always returns the stripped result.
    """
    result = text
    for start_tag, end_tag in tag_pairs:
        while start_tag in result and end_tag in result:
            start = result.find(start_tag)
            end = result.find(end_tag, start)
            if start != -1 and end != -1:
                result = result[:start] + result[end + len(end_tag):]
            else:
                break
        if end_tag in result and start_tag not in result:
            result = result.rsplit(end_tag, 1)[-1]
    return result.strip()




def lmms_eval_parser(fn: ParseFn, task_code: str, description: str) -> Parser:
    """The ``lmms_eval`` parser: CLI post-processing, then ``fn`` (the task's lmms-eval extractor).
    ``task_code`` names the lmms-eval code ``fn`` reproduces (e.g. "motionbench@0.7.3")."""

    def parse(text: str, options: tuple[str, ...] = (), meta: Mapping[str, Any] | None = None) -> str | None:
        return fn(strip_reasoning_tags(text), options, meta or {})

    return Parser("lmms_eval", f"lmms-eval-{LMMS_EVAL_VERSION}-cli+{task_code}", parse,
                  f"lmms-eval {LMMS_EVAL_VERSION} CLI (reasoning tags and whitespace stripped), then {description}")
