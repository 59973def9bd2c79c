"""One client for OpenAI-compatible ``/chat/completions`` endpoints (GPT-4o, a local vLLM server).

* ``ChatEndpoint``: frozen endpoint settings; ``base_url`` / ``model`` / ``api_key`` left ``None`` fall back to
  VPBENCH_LLM_BASE_URL / VPBENCH_LLM_MODEL / VPBENCH_LLM_API_KEY. Callers' configs extend it.
* ``ChatClient(endpoint, cache_path).complete(messages, validate=..., cache_key=...)``: POSTs the messages with
  stdlib ``urllib`` and returns ``validate(answer_text)``.

Failure handling of ``complete``, exactly:

1. Attempts: ``1 + max_retries``. Before attempt ``k >= 1`` it sleeps ``min(backoff_s * 2**(k-1), backoff_max_s)``,
   raised to a 429/5xx's numeric ``Retry-After`` header (still capped at ``backoff_max_s``).
2. Retried: HTTP 429 and 5xx, timeouts, connection errors (``URLError``), a body that is not a chat completion,
   and ``validate`` raising ``MalformedResponse``. Any other exception of ``validate`` propagates at once.
3. Any other HTTP status (401, 404, ...) raises ConfigError at once (wrong URL / model / key).
4. When every attempt failed: DataError if the last failure was a malformed answer, else ConfigError
   ("is the server up?").

Cache: a SQLite file (table ``completions``) maps ``sha256(cache_key, model, messages)`` to the answer text that
passed ``validate``; a hit is re-validated and returned without a request (an entry that no longer validates is
treated as a miss). The API key is never part of the key nor stored.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from vpbench.errors import ConfigError, DataError
from vpbench.hashing import canonical_json, stable_hash

T = TypeVar("T")

ENV_BASE_URL = "VPBENCH_LLM_BASE_URL"
ENV_MODEL = "VPBENCH_LLM_MODEL"
ENV_API_KEY = "VPBENCH_LLM_API_KEY"


class MalformedResponse(ValueError):
    """The endpoint answered, but not usably: raise it from ``validate`` to have the request retried.

    The message says what is wrong with the answer; it ends up in the DataError after the last attempt.
    """


class _Transient(Exception):
    """A retryable transport failure (429/5xx/timeout/connection); ``retry_after``: the Retry-After header."""

    def __init__(self, message: str, retry_after: str = "") -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChatEndpoint:
    """An OpenAI-compatible chat endpoint and how to call it.

    ``base_url`` is the API root (``http://host:8000/v1``); requests go to ``{base_url}/chat/completions``.
    ``None`` for ``base_url`` / ``model`` / ``api_key`` reads VPBENCH_LLM_BASE_URL / _MODEL / _API_KEY when the
    client is built. ``timeout_s``: per request; retries and backoff: module docstring.
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never shown in reprs / logs
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    temperature: float = 0.0
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"endpoint max_retries must be >= 0, got {self.max_retries}")
        if self.timeout_s <= 0:
            raise ConfigError(f"endpoint timeout_s must be > 0, got {self.timeout_s}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ConfigError(f"endpoint backoff_s/backoff_max_s must be >= 0, got {self.backoff_s}/"
                              f"{self.backoff_max_s}")

    def resolved_base_url(self) -> str:
        return self.base_url or os.environ.get(ENV_BASE_URL, "")

    def resolved_model(self) -> str:
        return self.model or os.environ.get(ENV_MODEL, "")

    def resolved_api_key(self) -> str:
        return self.api_key or os.environ.get(ENV_API_KEY, "")


def resolve_cache_path(value: str | None, filename: str) -> Path | None:
    """A config's ``cache_path``: ``""`` → None (no cache); None → ``$VPBENCH_CACHE_DIR/<filename>`` (default
    ``~/.cache/vpbench``); anything else → that path."""
    if value == "":
        return None
    if value is not None:
        return Path(value)
    root = os.environ.get("VPBENCH_CACHE_DIR") or str(Path.home() / ".cache" / "vpbench")
    return Path(root) / filename


class ChatClient:
    """``complete`` chat messages against one endpoint, with retries, validation and a SQLite cache.

    ``cache_path``: the SQLite file (None: no cache). ``label`` names the client in error messages (e.g.
    ``"keyword endpoint"``); ``prompt_version`` is only quoted in those messages. ConfigError when no base URL or
    model is configured (neither in ``endpoint`` nor in the environment).
    """

    def __init__(self, endpoint: ChatEndpoint, cache_path: str | Path | None = None, *,
                 label: str = "chat endpoint", prompt_version: str = "") -> None:
        base_url, model = endpoint.resolved_base_url(), endpoint.resolved_model()
        if not base_url or not model:
            raise ConfigError(
                f"{label} needs base_url and model: set base_url/model in its options or {ENV_BASE_URL}/"
                f"{ENV_MODEL} (e.g. http://localhost:8000/v1 and the served model name)"
            )
        self.endpoint = endpoint
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.label = label
        self.prompt_version = prompt_version
        self._api_key = endpoint.resolved_api_key()

    def __repr__(self) -> str:  # never shows the API key
        return f"ChatClient(url={self.url!r}, model={self.model!r}, cache_path={self.cache_path!r})"

    @property
    def where(self) -> str:
        """``"<label> <url> (model '<m>'[, prompt <v>])"`` for error messages."""
        prompt = f", prompt {self.prompt_version}" if self.prompt_version else ""
        return f"{self.label} {self.url} (model {self.model!r}{prompt})"

    def key(self, messages: list[dict[str, Any]], cache_key: Mapping[str, Any]) -> str:
        """The cache key of a request: a hash of ``cache_key``, the resolved model and ``messages``."""
        return stable_hash({"key": dict(cache_key), "model": self.model, "messages": messages}, length=32)

    # -- cache
    def _db(self) -> sqlite3.Connection:
        assert self.cache_path is not None
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(self.cache_path), timeout=30)
        con.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT, meta TEXT, "
                    "content TEXT)")
        return con

    def _cached(self, key: str) -> str | None:
        if self.cache_path is None:
            return None
        with closing(self._db()) as con:
            row = con.execute("SELECT content FROM completions WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _store(self, key: str, cache_key: Mapping[str, Any], content: str) -> None:
        if self.cache_path is None:
            return
        with closing(self._db()) as con, con:
            con.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?)",
                        (key, self.model, canonical_json(dict(cache_key)), content))

    # -- HTTP
    def request(self, messages: list[dict[str, Any]]) -> str:
        """One POST; the answer's text. Raises ``_Transient`` (retryable), MalformedResponse (not a chat
        completion) or ConfigError (any other HTTP status)."""
        ep = self.endpoint
        body = json.dumps({"model": self.model, "messages": messages, "temperature": ep.temperature,
                           "max_tokens": ep.max_tokens}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=ep.timeout_s) as resp:
                raw = resp.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode("utf-8", errors="replace")
            if e.code == 429 or e.code >= 500:
                retry_after = e.headers.get("Retry-After", "") if e.headers else ""
                raise _Transient(f"HTTP {e.code}: {detail}", retry_after or "") from e
            raise ConfigError(
                f"{self.label} {self.url} (model {self.model!r}) answered HTTP {e.code}: {detail}; "
                f"check the URL, the model name and {ENV_API_KEY}"
            ) from e
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
            raise _Transient(f"{type(e).__name__}: {e}") from e
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise MalformedResponse(f"not a chat completion response: {raw[:200]!r}") from e
        if not isinstance(content, str):
            raise MalformedResponse(f"not a chat completion response: {raw[:200]!r}")
        return content

    def delay(self, attempt: int, retry_after: str = "") -> float:
        """Seconds to sleep after failed attempt ``attempt`` (0-based): module docstring rule 1."""
        delay = self.endpoint.backoff_s * (2**attempt)
        if retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        return min(delay, self.endpoint.backoff_max_s)

    def complete(self, messages: list[dict[str, Any]], *, validate: Callable[[str], T],
                 cache_key: Mapping[str, Any], what: str = "answer", hint: str = "") -> T:
        """``validate(answer text)`` for ``messages`` (cached); retries and errors: module docstring.

        ``cache_key``: what identifies the request beyond model and messages (task, prompt version, limits);
        ``what`` / ``hint`` phrase the DataError (``"... gave no valid <what> after N attempts; ...<hint>"``).
        """
        key = self.key(messages, cache_key)
        hit = self._cached(key)
        if hit is not None:
            try:
                return validate(hit)
            except MalformedResponse:
                pass  # a stale entry: ask again and overwrite it
        attempts = self.endpoint.max_retries + 1
        last, retry_after, malformed = "", "", False
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.delay(attempt - 1, retry_after))
            retry_after = ""
            try:
                content = self.request(messages)
                result = validate(content)
            except MalformedResponse as e:
                last, malformed = str(e), True
            except _Transient as e:
                last, malformed, retry_after = str(e), False, e.retry_after
            else:
                self._store(key, cache_key, content)
                return result
        if malformed:
            raise DataError(f"{self.where} gave no valid {what} after {attempts} attempts; last problem: {last}"
                            f"{hint}")
        raise ConfigError(f"{self.where} failed after {attempts} attempts: {last}; is the server up?")
