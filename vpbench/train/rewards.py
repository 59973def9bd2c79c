"""Quality Q(o, y) and reward functions of Comparative GRPO (RECIPE §3).

Reward functions are plain callables ``(prompts, completions, **columns) -> list[float | None]``
(TRL's signature; ``None`` = not applicable to that row). The columns are the RL manifest's
fields, one value per completion: ``answer``, ``answer_type``, ``id``, ...

Quality by answer type (``answer_type`` of the RL manifest, ``vpbench data craft``):

* ``choice``: exact match of the option letter parsed by the TASK's own parser
  (``quality.choice_parser``: ``motionbench`` = MotionBench's official ``polish_answer``; any
  ``task[:parser]``);
* ``number``: the number parsed by a task parser (``quality.number_parser``, default VSI-Bench's
  numerical-answer parser ``vsibench:lmms_eval``) equals the reference number;
* ``yesno`` (or an ``open`` answer that is just "yes" / "no"): the first yes/no word equals it;
* ``open``: P(entailment) from an NLI model, premise = reference, hypothesis = response.

``format_reward``: 1 when the answer parses (open: non-empty) and the response length in
characters is within [min_chars, max_chars], else 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from vpbench.errors import ConfigError, DataError
from vpbench.task import Parser

RewardFn = Callable[..., list[float | None]]
ANSWER_TYPES = ("choice", "number", "yesno", "open")
_OPTION = re.compile(r"^\s*([A-Z])[.)]\s", re.MULTILINE)
_YESNO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def resolve_parser(spec: str) -> Parser:
    """``task`` (its default parser) or ``task:parser`` → the task's ``Parser``."""
    from vpbench.registry import get_task

    name, _, parser = spec.partition(":")
    return get_task(name).parser(parser or None)


def options_of(prompt: str) -> tuple[str, ...]:
    """The option lines ("A. ...") of a multiple-choice prompt, in order."""
    return tuple(m.group(0).strip() for m in _OPTION.finditer(prompt))


def parse_yesno(text: str) -> str | None:
    m = _YESNO.search(text)
    return m.group(1).lower() if m else None


def effective_type(answer_type: str, answer: str) -> str:
    if answer_type not in ANSWER_TYPES:
        raise DataError(f"answer_type {answer_type!r} is not one of {ANSWER_TYPES}")
    if answer_type == "open" and answer.strip().strip(".").lower() in ("yes", "no"):
        return "yesno"
    return answer_type


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


@dataclass
class QualityScorer:
    """Q(o, y) ∈ [0, 1] per answer type (see the module docstring). ``nli`` is any callable
    ``(premises, hypotheses) -> list[float]`` (``vpbench.train.nli.NLIScorer``); it is needed only
    when an open answer is scored."""

    choice_parser: Parser
    number_parser: Parser
    nli: Callable[[Sequence[str], Sequence[str]], list[float]] | None = None

    @classmethod
    def from_config(cls, q: Any) -> "QualityScorer":
        nli = None
        if q.nli_model:
            from vpbench.train.nli import NLIScorer

            nli = NLIScorer(q.nli_model, device=q.nli_device, batch_size=q.nli_batch_size)
        return cls(resolve_parser(q.choice_parser), resolve_parser(q.number_parser), nli)

    def parse(self, kind: str, prompt: str, response: str) -> str | None:
        """The parsed answer of a closed type (None when nothing parses)."""
        if kind == "choice":
            return self.choice_parser(response, options_of(prompt), {"answer_type": "MCA"})
        if kind == "number":
            return self.number_parser(response, (), {"answer_type": "NA"})
        if kind == "yesno":
            return parse_yesno(response)
        raise ValueError(kind)

    def closed(self, kind: str, prompt: str, response: str, answer: str) -> float:
        got = self.parse(kind, prompt, response)
        if got is None:
            return 0.0
        if kind == "number":
            a, b = _float(got), _float(answer.strip())
            return float(a is not None and b is not None and a == b)
        if kind == "yesno":
            return float(got == answer.strip().strip(".").lower())
        return float(got.strip() == answer.strip())

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str],
                 answer_type: Sequence[str], **_: Any) -> list[float | None]:
        out: list[float | None] = [None] * len(completions)
        open_rows = []
        for i, (p, o, y, t) in enumerate(zip(prompts, completions, answer, answer_type)):
            kind = effective_type(t, y)
            if kind == "open":
                open_rows.append(i)
            else:
                out[i] = self.closed(kind, p, o, y)
        if open_rows:
            if self.nli is None:
                raise ConfigError("open-ended answers in the RL manifest need an NLI model: set quality.nli_model "
                                  "to a local NLI checkpoint dir (premise = reference, hypothesis = response)")
            probs = self.nli([answer[i] for i in open_rows], [completions[i] for i in open_rows])
            for i, pr in zip(open_rows, probs):
                out[i] = float(pr)
        return out


@dataclass
class FormatReward:
    """1.0 when the response's answer parses (open: non-empty after strip) and its length in
    characters is within [min_chars, max_chars]; else 0.0."""

    quality: QualityScorer
    min_chars: int = 1
    max_chars: int = 2000

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str],
                 answer_type: Sequence[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for p, o, y, t in zip(prompts, completions, answer, answer_type):
            kind = effective_type(t, y)
            ok = bool(o.strip()) if kind == "open" else self.quality.parse(kind, p, o) is not None
            out.append(float(ok and self.min_chars <= len(o) <= self.max_chars))
        return out


def weighted_rewards(fns: Sequence[RewardFn], weights: Sequence[float], prompts: Sequence[str],
                     completions: Sequence[str], **columns: Any) -> list[float]:
    """Σ_k w_k·f_k per completion; a ``None`` counts 0 unless every function returned ``None``
    for that row (then NaN: the row is left out of its group's statistics, as TRL does)."""
    import math

    cols = [f(prompts, completions, **columns) for f in fns]
    out = []
    for i in range(len(completions)):
        vals = [(w, c[i]) for w, c in zip(weights, cols)]
        if all(v is None for _, v in vals):
            out.append(math.nan)
        else:
            out.append(sum(w * v for w, v in vals if v is not None))
    return out
