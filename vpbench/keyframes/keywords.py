"""Keyword extraction (RECIPE §1.1): fine-grained action/event phrases from a caption or a QA text.

* ``RuleBasedKeywords`` (offline, deterministic): verb phrases and event nouns found with a small lexicon.
* ``ChatKeywords``: an OpenAI-compatible chat endpoint (GPT-4o, a local vLLM server) with a fixed, versioned
  prompt and validated JSON output; HTTP, retries and the SQLite cache are ``vpbench.llm.ChatClient``'s.
* ``get_keyword_extractor(name, **opts)``: ``rules`` or ``chat``.

Rule-based extractor, exactly:
1. Lower-case; tokens are ``[a-z]+(?:[-'][a-z]+)*``; punctuation (``.,;:!?``) ends a phrase.
2. A token is a *verb* when its lemma is in ``VERBS``: the lemma is the token itself, an irregular form
   (``IRREGULAR``), or the token with ``-s/-es/-ed/-ing`` stripped (also undoing a doubled final consonant and
   restoring a final ``e``: ``snapping → snap``, ``waving → wave``, ``nodded → nod``). With
   ``unknown_ing_as_verb`` any other ``-ing`` word of >= 5 letters that is not in ``NOT_ING_VERBS`` counts too.
   A word in both ``VERBS`` and ``EVENT_NOUNS`` right after a determiner (``a, an, the, this, that``) is a noun.
3. Verb phrase = the verb (surface form) + up to ``max_object_words`` following content words, skipping
   determiners/possessives/small numerals (``the, his, three, ...``) and stopping at punctuation, a stopword,
   another verb
   or a preposition that is not a particle (``up, down, off, out, away, back, over, around``).
4. Event noun phrase = an ``EVENT_NOUNS`` word (singular or ``-s`` plural), with the preceding content word
   as modifier when there is one (``rear-end collision``).
5. Phrases are de-duplicated in order of first appearance and cut to ``max_keywords``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

from vpbench.config import check_keys, suggest
from vpbench.errors import ConfigError
from vpbench.llm import ChatClient, ChatEndpoint, MalformedResponse, resolve_cache_path

VERBS = frozenset(
    """
    blink wink nod shake turn raise lower wave smile frown laugh cry yawn sneeze cough frown grimace
    jump hop skip run walk step kick punch hit slap push pull throw catch grab drop lift hold release
    open close snap clap point touch tap rub scratch stretch bend squat sit stand lie kneel climb fall
    slip trip stumble roll spin swing swerve brake stop start accelerate crash collide hit strike
    overtake cross merge reverse flip flash blink explode burst pour fire shoot dive swim ride cycle
    drive park enter exit leave arrive approach chase follow dodge duck fight wrestle hug kiss shake
    eat drink chew bite swallow smoke sip lick breathe speak shout talk sing whistle dance clap
    write type draw cut chop stir flick toss bounce dribble serve pass volley swing bowl bat
    look glance stare gaze peek nodding rotate tilt lean sway wobble tremble shiver twitch
    move pan zoom slide shrink grow rise reach glow
    """.split()
)
IRREGULAR = {
    "fell": "fall", "fallen": "fall", "ran": "run", "threw": "throw", "thrown": "throw", "caught": "catch",
    "stood": "stand", "sat": "sit", "lay": "lie", "lying": "lie", "struck": "strike", "swung": "swing",
    "shook": "shake", "shaken": "shake", "rode": "ride", "ridden": "ride", "drove": "drive", "driven": "drive",
    "bit": "bite", "bitten": "bite", "ate": "eat", "eaten": "eat", "drank": "drink", "drunk": "drink",
    "spun": "spin", "slid": "slide", "held": "hold", "dove": "dive", "dived": "dive",
    "swam": "swim", "sang": "sing", "spoke": "speak", "wrote": "write", "drew": "draw", "began": "start",
    "hit": "hit", "cut": "cut", "shot": "shoot", "burst": "burst", "slipped": "slip",
}
EVENT_NOUNS = frozenset(
    """
    crash collision accident impact explosion flash blink wink nod smile frown jump fall kick punch
    slap hug kiss handshake gesture wave clap sneeze yawn swerve skid rollover spark flame fire
    shot goal tackle dive leap turn stop
    """.split()
)
DETERMINERS = frozenset(
    "a an the this that these those his her their its my your our some any one two three four five six".split()
)
STOPWORDS = frozenset(
    """
    and or but then when while before after during as if than so because until since whether
    is are was were be been being am do does did doing have has had having can could will would shall should
    may might must not no yes what which who whom whose where why how many much times time timestamp
    it he she they them him we you i me us there here very just also only again
    once twice thrice suddenly quickly slowly briefly first second finally
    """.split()
)
PREPOSITIONS = frozenset("in on at to from with by for of into onto toward towards across through near under".split())
PARTICLES = frozenset("up down off out away back over around".split())
NOT_ING_VERBS = frozenset(
    "something anything nothing everything thing during morning evening ceiling building clothing "
    "ring king string spring wing sibling meeting painting beginning".split()
)

_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*|[.,;:!?]")
_BREAK = frozenset(".,;:!?")


def lemma(word: str) -> str | None:
    """The ``VERBS`` lemma of ``word`` (see module rule 2), or None when it is not a known verb form."""
    if word in VERBS:
        return word
    if word in IRREGULAR:
        return IRREGULAR[word]
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[: -len(suffix)]
            cands = [stem, stem + "e"]
            if len(stem) >= 2 and stem[-1] == stem[-2]:
                cands.append(stem[:-1])
            if suffix == "ed" and stem.endswith("i"):
                cands.append(stem[:-1] + "y")
            for c in cands:
                if c in VERBS:
                    return c
    return None


@dataclass(frozen=True)
class RuleKeywordsConfig:
    max_keywords: int = 8
    max_object_words: int = 2
    unknown_ing_as_verb: bool = True


class RuleBasedKeywords:
    """Offline, deterministic keyword extractor (module docstring has the rules)."""

    backend = "rules"
    model = "lexicon-v1"
    prompt_version = "rules-v1"

    def __init__(self, cfg: RuleKeywordsConfig = RuleKeywordsConfig()) -> None:
        self.cfg = cfg

    def _is_verb(self, tokens: list[str], i: int) -> bool:
        w = tokens[i]
        if lemma(w) is None:
            if not (self.cfg.unknown_ing_as_verb and w.endswith("ing") and len(w) >= 5 and w not in NOT_ING_VERBS):
                return False
            return w not in STOPWORDS
        prev = tokens[i - 1] if i > 0 else ""
        if w in EVENT_NOUNS and prev in ("a", "an", "the", "this", "that"):
            return False
        return True

    def _noun(self, w: str) -> bool:
        return w in EVENT_NOUNS or (w.endswith("s") and w[:-1] in EVENT_NOUNS) or (
            w.endswith("es") and w[:-2] in EVENT_NOUNS
        )

    def _content(self, w: str) -> bool:
        return w not in _BREAK and w not in STOPWORDS and w not in PREPOSITIONS and w not in DETERMINERS

    def extract(self, text: str) -> list[str]:
        """Keyword phrases of ``text`` (possibly empty)."""
        tokens = _TOKEN.findall(text.lower())
        phrases: list[str] = []
        i = 0
        while i < len(tokens):
            w = tokens[i]
            if w in _BREAK or w in STOPWORDS or w in DETERMINERS:
                i += 1
                continue
            if self._is_verb(tokens, i):
                words, j = [w], i + 1
                while j < len(tokens) and len(words) - 1 < self.cfg.max_object_words:
                    nxt = tokens[j]
                    if nxt in DETERMINERS:
                        j += 1
                        continue
                    if nxt in PARTICLES or (self._content(nxt) and not self._is_verb(tokens, j)):
                        words.append(nxt)
                        j += 1
                        continue
                    break
                phrases.append(" ".join(words))
                i = j
                continue
            if self._noun(w):
                prev = tokens[i - 1] if i > 0 else ""
                mod = prev if prev and self._content(prev) and not self._noun(prev) and lemma(prev) is None else ""
                phrases.append(f"{mod} {w}".strip())
            i += 1
        out: list[str] = []
        for p in phrases:
            if p not in out:
                out.append(p)
        return out[: self.cfg.max_keywords]


# --------------------------------------------------------------------------------------------- chat backend

PROMPT_VERSION = "kw-chat-v1"
SYSTEM_PROMPT = (
    "You extract keywords for video frame retrieval. Given a video caption or a question about a video, list "
    "the fine-grained, transient actions or events it describes or implies (e.g. 'snap fingers', 'blink', "
    "'car hits pedestrian'). Each keyword is a short phrase of at most {max_words} words, visual, without "
    "timestamps or counts. Answer with JSON only: {{\"keywords\": [\"...\", ...]}} with 1 to {max_keywords} items."
)
USER_TEMPLATE = "Text:\n{text}"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


@dataclass(frozen=True)
class ChatKeywordsConfig(ChatEndpoint):
    """``ChatEndpoint`` settings (``None`` falls back to VPBENCH_LLM_BASE_URL / _MODEL / _API_KEY) plus:

    ``max_keywords`` / ``max_words``: limits asked for in the prompt and enforced on the answer.
    ``cache_path``: SQLite file; None → ``$VPBENCH_CACHE_DIR/keywords.sqlite`` (default ``~/.cache/vpbench``);
    ``""`` disables the cache. The API key is never written to the cache.
    """

    max_keywords: int = 8
    max_words: int = 6
    cache_path: str | None = None


def parse_keywords(content: str, max_keywords: int, max_words: int) -> list[str]:
    """Validate a model answer: JSON ``{"keywords": [str, ...]}`` (or a bare list), optionally in a ``` fence.

    Returns 1..max_keywords stripped, de-duplicated phrases; raises ValueError saying what is wrong.
    """
    m = _FENCE.match(content)
    body = m.group(1) if m else content.strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        raise ValueError(f"answer is not JSON ({e.msg})") from e
    items = obj.get("keywords") if isinstance(obj, dict) else obj
    if not isinstance(items, list) or not items:
        raise ValueError('answer must be {"keywords": [...]} with at least one item')
    out: list[str] = []
    for it in items:
        if not isinstance(it, str) or not it.strip():
            raise ValueError(f"keyword {it!r} is not a non-empty string")
        phrase = " ".join(it.split())
        if len(phrase.split()) > max_words or len(phrase) > 80:
            raise ValueError(f"keyword {phrase!r} is longer than {max_words} words / 80 characters")
        if phrase not in out:
            out.append(phrase)
    return out[:max_keywords]


class ChatKeywords:
    """Keywords from an OpenAI-compatible ``/chat/completions`` endpoint through ``vpbench.llm.ChatClient``.

    Retries (exponential backoff ``backoff_s * 2**attempt``, capped at ``backoff_max_s``; a 429's numeric
    Retry-After is honoured up to the cap) on HTTP 429/5xx, timeouts, connection errors and malformed answers,
    ``max_retries`` times. Other HTTP errors (401, 404, ...) raise ConfigError at once. Malformed answers after
    all retries raise DataError; an unreachable endpoint raises ConfigError. Results are cached per
    (text, backend, model, prompt version + prompt text + limits).
    """

    backend = "openai-chat"
    prompt_version = PROMPT_VERSION

    def __init__(self, cfg: ChatKeywordsConfig = ChatKeywordsConfig()) -> None:
        self.cfg = cfg
        self.cache_path = resolve_cache_path(cfg.cache_path, "keywords.sqlite")
        self.client = ChatClient(cfg, self.cache_path, label="keyword endpoint", prompt_version=PROMPT_VERSION)
        self.url = self.client.url
        self.model = self.client.model
        self.system_prompt = SYSTEM_PROMPT.format(max_words=cfg.max_words, max_keywords=cfg.max_keywords)

    def messages(self, text: str) -> list[dict[str, str]]:
        """The chat messages sent for ``text``: the versioned system prompt and the user turn."""
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": USER_TEMPLATE.format(text=text)}]

    def _key_fields(self, text: str) -> dict[str, object]:
        return {"text": text, "backend": self.backend, "prompt_version": self.prompt_version,
                "max_keywords": self.cfg.max_keywords, "max_words": self.cfg.max_words}

    def cache_key(self, text: str) -> str:
        """The cache key of ``text`` (text, backend, model, prompt version + prompt text, limits)."""
        return self.client.key(self.messages(text), self._key_fields(text))

    def _validate(self, content: str) -> list[str]:
        try:
            return parse_keywords(content, self.cfg.max_keywords, self.cfg.max_words)
        except ValueError as e:
            raise MalformedResponse(f"invalid answer: {e}") from e

    def extract(self, text: str) -> list[str]:
        """Keywords for ``text`` (cached). Raises DataError / ConfigError as described in the class docstring."""
        return self.client.complete(
            self.messages(text), validate=self._validate, cache_key=self._key_fields(text),
            what=f"keyword list for text {text[:80]!r}",
            hint=". Use a model that follows JSON instructions or the 'rules' backend",
        )


def get_keyword_extractor(name: str, **opts: object) -> "RuleBasedKeywords | ChatKeywords":
    """``rules`` (RuleKeywordsConfig options) or ``chat`` (ChatKeywordsConfig options)."""
    table = {"rules": (RuleKeywordsConfig, RuleBasedKeywords), "chat": (ChatKeywordsConfig, ChatKeywords)}
    if name not in table:
        raise ConfigError(f"unknown keyword backend '{name}'{suggest(name, table)}; known: chat, rules")
    cfg_cls, cls = table[name]
    check_keys(opts, [f.name for f in dataclasses.fields(cfg_cls)], f"keyword backend '{name}' options")
    return cls(cfg_cls(**opts))  # type: ignore[arg-type]
