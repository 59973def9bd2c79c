"""Caption + temporal QA annotation of a clip (paper §3.4, RECIPE §4).

Two annotators, same interface ``annotate(item) -> Annotation`` and identity (``name``, ``model``,
``prompt_version``, recorded in every manifest line's ``meta``):

* ``TemplateAnnotator`` (offline, for generated data): the scene's ground-truth caption (``facts["caption"]``)
  plus the clip's existing QA (MotionBench rows; a choice question whose options are all numbers becomes a
  ``number`` question) plus a few QA phrased from the scene facts (``TEMPLATE_VERSION``).
* ``EndpointAnnotator``: an OpenAI-compatible chat endpoint (GPT-4o, a local vLLM server) asked, with the fixed
  versioned prompt ``PROMPT_VERSION``, for one caption and ``n_qa`` temporal QA about the clip, given the clip's
  text context (dataset label, existing caption/QA, metadata). The HTTP client, retries, backoff and cache are
  ``vpbench.llm.ChatClient``'s; the answer must be JSON
  ``{"caption": str, "qa": [{"question", "answer", "answer_type": "choice|number|open", "options": [...]}]}``
  and is validated (``parse_annotation``); an invalid answer is retried like a transient error. Results are cached
  in SQLite per (video id, text context, prompt version + prompt text, model, n_qa).
"""

from __future__ import annotations

import dataclasses

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from vpbench.craft.validate import ANSWER_TYPES
from vpbench.errors import ConfigError
from vpbench.llm import ChatClient, ChatEndpoint, MalformedResponse, resolve_cache_path

if TYPE_CHECKING:
    from vpbench.craft.inputs import CraftItem


@dataclass(frozen=True)
class QAItem:
    """A QA pair. ``answer``: the option letter (choice), a number string (number) or free text (open).
    ``uid``: unique within the clip. ``answer_text``: the option text of a choice answer when known."""

    question: str
    answer: str
    answer_type: str = "open"
    options: tuple[str, ...] = ()
    uid: str = ""
    answer_text: str = ""


@dataclass(frozen=True)
class Annotation:
    video_id: str
    caption: str | None
    qa: tuple[QAItem, ...] = ()
    source: str = ""


class Annotator(Protocol):
    name: str
    model: str
    prompt_version: str

    def annotate(self, item: "CraftItem", duration_s: float | None = None) -> Annotation: ...


# ------------------------------------------------------------------------------------------- template

TEMPLATE_VERSION = "template-v1"
_NUM = re.compile(r"^\d+(?:\.\d+)?$")


def _numeric_choice(q: QAItem) -> QAItem:
    """A lettered choice whose options are all numbers → a ``number`` question answered with the number."""
    if q.answer_type != "choice" or len(q.options) < 2 or not all(_NUM.match(o) for o in q.options):
        return q
    idx = ord(q.answer) - ord("A") if len(q.answer) == 1 else -1
    if not 0 <= idx < len(q.options):
        return q
    return QAItem(question=q.question, answer=q.options[idx], answer_type="number", uid=q.uid)


def _letter_choice(question: str, truth: str, options: list[str], uid: str) -> QAItem:
    opts = tuple(sorted(set(options)))
    return QAItem(question=question, answer=chr(ord("A") + opts.index(truth)), answer_type="choice",
                  options=opts, uid=uid, answer_text=truth)


def facts_qa(facts: Mapping[str, Any]) -> list[QAItem]:
    """Temporal QA phrased from ``vpbench.synth.scenes`` facts (deterministic; empty for unknown scenes)."""
    out: list[QAItem] = []
    fps = facts.get("fps")
    if "lamps" in facts and fps:
        for i, lamp in enumerate(facts["lamps"]):
            first = lamp["flashes"][0][0] / float(fps)
            out.append(QAItem(f"At what second does the {lamp['name']} flash for the first time?",
                              f"{first:g}", "number", uid=f"f{i}_first"))
    if "order" in facts and "objects" in facts:
        order = list(facts["order"])
        out.append(_letter_choice(f"Which object moves right after the {order[0]}?", order[1], order, "f_after"))
    if "via" in facts and "destination" in facts:
        corners = ["top-left", "top-right", "bottom-left", "bottom-right"]
        out.append(_letter_choice(f"Which corner does the {facts['object']} reach first?", facts["via"], corners,
                                  "f_via"))
    if facts.get("motion") == "bounce" and "bounces" in facts:
        out.append(QAItem(f"How many times does the {facts['object']} bounce?", str(facts["bounces"]), "number",
                          uid="f_bounces"))
    return out


class TemplateAnnotator:
    """Offline annotator for generated data (module docstring)."""

    name = "template"
    model = "template"
    prompt_version = TEMPLATE_VERSION

    def annotate(self, item: "CraftItem", duration_s: float | None = None) -> Annotation:
        existing = item.existing
        caption = existing.caption if existing and existing.caption else item.facts.get("caption")
        qa = [_numeric_choice(q) for q in (existing.qa if existing else ())]
        qa += facts_qa(item.facts)
        return Annotation(video_id=item.id, caption=caption, qa=tuple(qa), source=self.name)


# ------------------------------------------------------------------------------------------- endpoint

PROMPT_VERSION = "craft-annot-v1"
SYSTEM_PROMPT = (
    "You write training annotations for fine-grained video understanding. You are given what is known about a "
    "short video clip. Write (i) one caption of 1-3 complete sentences describing the visible dynamics in temporal "
    "order, and (ii) {n_qa} question-answer pairs about transient events: when something happens (\"at 2 "
    "seconds\"), in what order (\"first\", \"then\", \"after\"), how many times (\"twice\", \"3 times\") or for how "
    "long. Describe only what is visible in the clip: never mention sound, a narrator, or anything off-screen, "
    "before or after the clip. Answer types: \"number\" (answer is a number only), \"choice\" (give 4 options; "
    "the answer is the option letter A-D) or \"open\" (a short sentence). Answer with JSON only: "
    "{{\"caption\": \"...\", \"qa\": [{{\"question\": \"...?\", \"answer\": \"...\", \"answer_type\": "
    "\"number|choice|open\", \"options\": [\"...\"]}}]}}."
)
USER_TEMPLATE = "Clip id: {video_id}\nDuration: {duration}\nWhat is known about the clip:\n{context}"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
_LETTER = re.compile(r"^(?:\(([A-Z])\)|([A-Z])[.)]?)$")  # "A", "(A)", "A.", "A)"
_LETTER_TEXT = re.compile(r"^([A-Z])\.\s+(.+)$", re.S)  # "A. <the option's exact text>"


def choice_letter(answer: str, options: list[str]) -> str | None:
    """The option letter a choice answer names, or None. Accepted: a bare letter ("A", "(A)", "A.", "A)"),
    "A. <exact text of option A>", or an option's exact text. "A red car turns first" is no letter."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    if answer in options:
        return letters[options.index(answer)]
    m = _LETTER.match(answer)
    if m:
        letter = m.group(1) or m.group(2)
        return letter if letter in letters else None
    m = _LETTER_TEXT.match(answer)
    if m and m.group(1) in letters and m.group(2).strip() == options[letters.index(m.group(1))]:
        return m.group(1)
    return None


def parse_annotation(content: str, video_id: str, max_qa: int) -> Annotation:
    """Validate a model answer (module docstring schema, optionally in a ``` fence); ValueError says what is wrong.

    A choice answer given as ``"B"``, ``"B."``, ``"(B)"``, ``"B)"``, ``"B. <option B's exact text>"`` or as an option's
    exact text becomes the letter; anything else (``"A red car turns first"``) is a ValueError.
    """
    m = _FENCE.match(content)
    try:
        obj = json.loads(m.group(1) if m else content.strip())
    except json.JSONDecodeError as e:
        raise ValueError(f"answer is not JSON ({e.msg})") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("caption"), str) or not obj["caption"].strip():
        raise ValueError('answer must be an object with a non-empty "caption" string')
    qa = obj.get("qa")
    if not isinstance(qa, list) or not qa:
        raise ValueError('"qa" must be a non-empty list')
    items: list[QAItem] = []
    for j, q in enumerate(qa[:max_qa]):
        if not isinstance(q, dict) or not all(isinstance(q.get(k), (str, int, float)) for k in ("question", "answer")):
            raise ValueError(f"qa[{j}] must have string 'question' and 'answer'")
        atype = q.get("answer_type", "open")
        if atype not in ANSWER_TYPES:
            raise ValueError(f"qa[{j}].answer_type must be one of {ANSWER_TYPES}, got {atype!r}")
        opts = q.get("options") or []
        if not isinstance(opts, list) or not all(isinstance(o, str) and o.strip() for o in opts):
            raise ValueError(f"qa[{j}].options must be a list of strings")
        answer = str(q["answer"]).strip()
        opts = [o.strip() for o in opts] if atype == "choice" else []
        if atype == "choice":
            if len(opts) < 2:
                raise ValueError(f"qa[{j}] is a choice question with {len(opts)} options")
            letter = choice_letter(answer, opts)
            if letter is None:
                raise ValueError(f"qa[{j}] choice answer {answer!r} is not an option letter (give 'A', '(A)', "
                                 "'A.', 'A)' or 'A. <the option text>')")
            answer = letter
        items.append(QAItem(question=str(q["question"]).strip(), answer=answer, answer_type=atype,
                            options=tuple(opts), uid=f"qa{j}"))
    return Annotation(video_id=video_id, caption=obj["caption"].strip(), qa=tuple(items))


@dataclass(frozen=True)
class EndpointConfig(ChatEndpoint):
    """``ChatEndpoint`` settings (``None`` falls back to VPBENCH_LLM_BASE_URL / _MODEL / _API_KEY) plus ``n_qa``
    (QA pairs asked for), ``extra_context`` (lines appended to the user turn) and ``cache_path`` (SQLite file;
    None → ``$VPBENCH_CACHE_DIR/annotations.sqlite``; "" disables)."""

    timeout_s: float = 120.0
    max_tokens: int = 1024
    n_qa: int = 3
    cache_path: str | None = None
    extra_context: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_qa < 1:
            raise ConfigError(f"annotate.endpoint.n_qa must be >= 1, got {self.n_qa}")


def _context(item: "CraftItem") -> str:
    lines = [item.context] if item.context else []
    ex = item.existing
    if ex and ex.caption:
        lines.append(f"existing caption: {ex.caption}")
    for q in ex.qa if ex else ():
        opts = "".join(f" {chr(ord('A') + i)}. {o}" for i, o in enumerate(q.options))
        lines.append(f"known QA: {q.question}{opts} -> {q.answer}")
    for k in ("caption",):
        if item.facts.get(k):
            lines.append(f"ground truth: {item.facts[k]}")
    return "\n".join(lines) or "(no text context: describe generic visible dynamics)"


class EndpointAnnotator:
    """LLM annotator through ``vpbench.llm.ChatClient`` (module docstring)."""

    name = "endpoint"
    prompt_version = PROMPT_VERSION

    def __init__(self, cfg: EndpointConfig = EndpointConfig()) -> None:
        self.cfg = cfg
        self.cache_path = resolve_cache_path(cfg.cache_path, "annotations.sqlite")
        self.client = ChatClient(cfg, self.cache_path, label="annotation endpoint", prompt_version=PROMPT_VERSION)
        self.model = self.client.model
        self.system_prompt = SYSTEM_PROMPT.format(n_qa=cfg.n_qa)

    def user_text(self, item: "CraftItem", duration_s: float | None = None) -> str:
        extra = "".join(f"\n{k}: {v}" for k, v in sorted(self.cfg.extra_context.items()))
        dur = f"{duration_s:.2f} s" if duration_s else "unknown"
        return USER_TEMPLATE.format(video_id=item.id, duration=dur, context=_context(item)) + extra

    def messages(self, text: str) -> list[dict[str, str]]:
        """The chat messages sent for the user turn ``text`` (``user_text``)."""
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": text}]

    def _key_fields(self, video_id: str, text: str) -> dict[str, Any]:
        return {"video": video_id, "text": text, "prompt_version": PROMPT_VERSION, "n_qa": self.cfg.n_qa}

    def cache_key(self, video_id: str, text: str) -> str:
        """The cache key of a clip's request (video id, text context, model, prompt version + text, n_qa)."""
        return self.client.key(self.messages(text), self._key_fields(video_id, text))

    def annotate(self, item: "CraftItem", duration_s: float | None = None) -> Annotation:
        """Annotation for ``item`` (cached). DataError after ``max_retries`` invalid answers; ConfigError when
        the endpoint is unreachable or refuses the request (wrong URL / model / key)."""

        def validate(content: str) -> Annotation:
            try:
                return parse_annotation(content, item.id, self.cfg.n_qa)
            except ValueError as e:
                raise MalformedResponse(f"invalid answer: {e}") from e

        text = self.user_text(item, duration_s)
        ann = self.client.complete(self.messages(text), validate=validate,
                                   cache_key=self._key_fields(item.id, text), what=f"annotation for clip {item.id!r}")
        return _with_source(ann, self)


def _with_source(ann: Annotation, annotator: EndpointAnnotator) -> Annotation:
    return Annotation(video_id=ann.video_id, caption=ann.caption, qa=ann.qa,
                      source=f"endpoint:{annotator.model}:{PROMPT_VERSION}")


def get_annotator(name: str, options: Mapping[str, Any] | None = None) -> TemplateAnnotator | EndpointAnnotator:
    """``template`` (no options) or ``endpoint`` (``EndpointConfig`` options)."""
    from vpbench.config import from_mapping, suggest

    opts = dict(options or {})
    if name == "template":
        if opts:
            raise ConfigError(f"annotator 'template' takes no options, got {sorted(opts)}")
        return TemplateAnnotator()
    if name == "endpoint":
        cfg = from_mapping(EndpointConfig, opts, "annotate.endpoint")
        if isinstance(opts.get("cache_path"), str) and not opts["cache_path"].strip():
            # "" means "no cache"; vpbench.config.coerce reads "" as null (= the default cache) for Optional fields
            cfg = dataclasses.replace(cfg, cache_path="")
        return EndpointAnnotator(cfg)
    raise ConfigError(f"unknown annotator '{name}'{suggest(name, ['template', 'endpoint'])}; known: endpoint, template")
