"""Keyword extraction (RECIPE §1.1): fine-grained action/event phrases from a caption or a QA text.

* ``RuleBasedKeywords`` (offline, deterministic): verb phrases and event nouns found with a small lexicon.
* ``ChatKeywords``: an OpenAI-compatible chat endpoint (GPT-4o, a local vLLM server) with a fixed, versioned
  prompt, validated JSON output, retries and a SQLite cache; see its docstring.
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
import http.client
import json
import os
import re
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from vpbench.config import check_keys, suggest
from vpbench.errors import ConfigError, DataError
from vpbench.hashing import stable_hash

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
class ChatKeywordsConfig:
    """Endpoint settings; ``None`` falls back to VPBENCH_LLM_BASE_URL / VPBENCH_LLM_MODEL / VPBENCH_LLM_API_KEY.

    ``base_url`` is the API root (``http://host:8000/v1``); requests go to ``{base_url}/chat/completions``.
    ``cache_path``: SQLite file; None → ``$VPBENCH_CACHE_DIR/keywords.sqlite`` (default ``~/.cache/vpbench``);
    ``""`` disables the cache. The API key is never written to the cache.
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    max_keywords: int = 8
    max_words: int = 6
    temperature: float = 0.0
    max_tokens: int = 256
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


class _Retryable(Exception):
    """A transient failure (429/5xx/timeout/connection): args = (message, Retry-After header)."""


class _Malformed(Exception):
    """The server answered, but not with a chat completion."""


class ChatKeywords:
    """Keywords from an OpenAI-compatible ``/chat/completions`` endpoint (stdlib ``urllib``).

    Retries (exponential backoff ``backoff_s * 2**attempt``, capped at ``backoff_max_s``; a 429's numeric
    Retry-After is honoured up to the cap) on HTTP 429/5xx, timeouts, connection errors and malformed answers,
    ``max_retries`` times. Other HTTP errors (401, 404, ...) raise ConfigError at once. Malformed answers after
    all retries raise DataError; an unreachable endpoint raises ConfigError. Results are cached per
    (text, backend, model, prompt version + prompt text + limits).
    """

    backend = "openai-chat"
    prompt_version = PROMPT_VERSION

    def __init__(self, cfg: ChatKeywordsConfig = ChatKeywordsConfig()) -> None:
        base_url = cfg.base_url or os.environ.get("VPBENCH_LLM_BASE_URL", "")
        model = cfg.model or os.environ.get("VPBENCH_LLM_MODEL", "")
        if not base_url or not model:
            raise ConfigError(
                "keyword backend 'chat' needs base_url and model: set keywords.base_url/keywords.model or "
                "VPBENCH_LLM_BASE_URL/VPBENCH_LLM_MODEL (e.g. http://localhost:8000/v1 and the served model name)"
            )
        self.cfg = cfg
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = cfg.api_key or os.environ.get("VPBENCH_LLM_API_KEY", "")
        self._system = SYSTEM_PROMPT.format(max_words=cfg.max_words, max_keywords=cfg.max_keywords)
        if cfg.cache_path == "":
            self.cache_path: Path | None = None
        elif cfg.cache_path is not None:
            self.cache_path = Path(cfg.cache_path)
        else:
            root = os.environ.get("VPBENCH_CACHE_DIR") or str(Path.home() / ".cache" / "vpbench")
            self.cache_path = Path(root) / "keywords.sqlite"

    def cache_key(self, text: str) -> str:
        return stable_hash(
            {"text": text, "backend": self.backend, "model": self.model, "prompt_version": self.prompt_version,
             "prompt": [self._system, USER_TEMPLATE], "max_keywords": self.cfg.max_keywords,
             "max_words": self.cfg.max_words},
            length=32,
        )

    # -- cache
    def _db(self) -> sqlite3.Connection:
        assert self.cache_path is not None
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(self.cache_path), timeout=30)
        con.execute(
            "CREATE TABLE IF NOT EXISTS keywords (key TEXT PRIMARY KEY, backend TEXT, model TEXT, "
            "prompt_version TEXT, text TEXT, keywords TEXT)"
        )
        return con

    def _cached(self, key: str) -> list[str] | None:
        if self.cache_path is None:
            return None
        with closing(self._db()) as con:
            row = con.execute("SELECT keywords FROM keywords WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _store(self, key: str, text: str, kws: list[str]) -> None:
        if self.cache_path is None:
            return
        with closing(self._db()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO keywords VALUES (?, ?, ?, ?, ?, ?)",
                (key, self.backend, self.model, self.prompt_version, text, json.dumps(kws)),
            )

    # -- HTTP
    def _request(self, text: str) -> str:
        body = json.dumps({
            "model": self.model,
            "messages": [
                {"role": "system", "content": self._system},
                {"role": "user", "content": USER_TEMPLATE.format(text=text)},
            ],
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                raw = resp.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode("utf-8", errors="replace")
            if e.code == 429 or e.code >= 500:
                retry_after = e.headers.get("Retry-After", "") if e.headers else ""
                raise _Retryable(f"HTTP {e.code}: {detail}", retry_after) from e
            raise ConfigError(
                f"keyword endpoint {self.url} (model {self.model!r}) answered HTTP {e.code}: {detail}; "
                "check the URL, the model name and VPBENCH_LLM_API_KEY"
            ) from e
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
            raise _Retryable(f"{type(e).__name__}: {e}", "") from e
        try:
            return json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise _Malformed(f"not a chat completion response: {raw[:200]!r}") from e

    def extract(self, text: str) -> list[str]:
        """Keywords for ``text`` (cached). Raises DataError / ConfigError as described in the class docstring."""
        key = self.cache_key(text)
        hit = self._cached(key)
        if hit is not None:
            return hit
        last, retry_after = "", ""
        malformed = False
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt - 1, retry_after))
            retry_after = ""
            try:
                kws = parse_keywords(self._request(text), self.cfg.max_keywords, self.cfg.max_words)
            except _Malformed as e:
                last, malformed = str(e), True
            except ValueError as e:
                last, malformed = f"invalid answer: {e}", True
            except _Retryable as e:
                last, malformed, retry_after = str(e.args[0]), False, str(e.args[1])
            else:
                self._store(key, text, kws)
                return kws
        where = f"keyword endpoint {self.url} (model {self.model!r}, prompt {self.prompt_version})"
        if malformed:
            raise DataError(
                f"{where} gave no valid keyword list for text {text[:80]!r} after {self.cfg.max_retries + 1} "
                f"attempts; last problem: {last}. Use a model that follows JSON instructions or the 'rules' backend"
            )
        raise ConfigError(f"{where} failed after {self.cfg.max_retries + 1} attempts: {last}; is the server up?")

    def _delay(self, attempt: int, retry_after: str) -> float:
        delay = self.cfg.backoff_s * (2**attempt)
        if retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        return min(delay, self.cfg.backoff_max_s)


def get_keyword_extractor(name: str, **opts: object) -> "RuleBasedKeywords | ChatKeywords":
    """``rules`` (RuleKeywordsConfig options) or ``chat`` (ChatKeywordsConfig options)."""
    table = {"rules": (RuleKeywordsConfig, RuleBasedKeywords), "chat": (ChatKeywordsConfig, ChatKeywords)}
    if name not in table:
        raise ConfigError(f"unknown keyword backend '{name}'{suggest(name, table)}; known: chat, rules")
    cfg_cls, cls = table[name]
    check_keys(opts, [f.name for f in dataclasses.fields(cfg_cls)], f"keyword backend '{name}' options")
    return cls(cfg_cls(**opts))  # type: ignore[arg-type]
