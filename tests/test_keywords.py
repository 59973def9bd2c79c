"""Keyword extraction: the rule-based extractor on a table of inputs, and ChatKeywords against a local stub server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vpbench.errors import ConfigError, DataError
from vpbench.keyframes.keywords import (
    PROMPT_VERSION,
    ChatKeywords,
    ChatKeywordsConfig,
    RuleBasedKeywords,
    RuleKeywordsConfig,
    get_keyword_extractor,
    lemma,
    parse_keywords,
)


# --------------------------------------------------------------------------------------------- rules
@pytest.mark.parametrize(
    "text, expected",
    [
        ("At what timestamp does the subject snap their fingers?", ["snap fingers"]),
        ("How many times does the light flash?", ["flash"]),
        ("Does the person blink before turning their head?", ["blink", "turning head"]),
        ("The man raises his left hand and waves at the camera.", ["raises left hand", "waves"]),
        ("A rear-end collision happens when the white car suddenly brakes.", ["rear-end collision", "brakes"]),
        ("The woman is juggling three balls, then she fell down.", ["juggling balls", "fell down"]),
        ("After a crash, the cyclist nodded twice.", ["crash", "nodded"]),
        ("The pedestrian was struck by a turning truck.", ["struck", "turning truck"]),
        ("Nothing happens in the morning.", []),
        ("He waves. He waves again!", ["waves"]),
    ],
)
def test_rule_based_table(text, expected):
    assert RuleBasedKeywords().extract(text) == expected


@pytest.mark.parametrize(
    "word, expected",
    [("snapping", "snap"), ("waving", "wave"), ("nodded", "nod"), ("raises", "raise"), ("fell", "fall"),
     ("kicks", "kick"), ("crashes", "crash"), ("camera", None), ("sing", "sing"), ("king", None)],
)
def test_lemma(word, expected):
    assert lemma(word) == expected


def test_rule_limits():
    r = RuleBasedKeywords(RuleKeywordsConfig(max_keywords=2, max_object_words=1))
    assert r.extract("She opens the door, kicks the red ball and jumps.") == ["opens door", "kicks red"]
    assert RuleBasedKeywords(RuleKeywordsConfig(unknown_ing_as_verb=False)).extract("juggling balls") == []


# ---------------------------------------------------------------------------------------------- stub server
class _Stub:
    """Serves scripted (status, body) answers in order and records the requests it got."""

    def __init__(self, script: list[tuple[int, str]]):
        self.script = list(script)
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, text = stub.script.pop(0) if stub.script else (500, "script exhausted")
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _completion(content: str) -> str:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


@pytest.fixture
def stub_factory():
    stubs: list[_Stub] = []

    def make(script):
        stubs.append(_Stub(script))
        return stubs[-1]

    yield make
    for s in stubs:
        s.close()


def _chat(stub: _Stub, tmp_path, **kw) -> ChatKeywords:
    opts = dict(base_url=stub.base_url, model="tiny-llm", api_key="sk-test", backoff_s=0.0, max_retries=2,
                timeout_s=5.0, cache_path=str(tmp_path / "kw.sqlite"))
    opts.update(kw)
    return ChatKeywords(ChatKeywordsConfig(**opts))


def test_chat_valid_response_and_cache(stub_factory, tmp_path):
    stub = stub_factory([(200, _completion('```json\n{"keywords": ["snap fingers", " blink ", "snap fingers"]}\n```'))])
    chat = _chat(stub, tmp_path)
    assert chat.extract("Does she snap her fingers?") == ["snap fingers", "blink"]
    req = stub.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "tiny-llm" and req["body"]["temperature"] == 0.0
    assert req["body"]["messages"][1]["content"].endswith("Does she snap her fingers?")
    # cached: a second extractor with the same (text, backend, model, prompt) makes no request
    assert _chat(stub, tmp_path).extract("Does she snap her fingers?") == ["snap fingers", "blink"]
    assert len(stub.requests) == 1
    # a different model is a different cache entry → a request (the script is empty → 500s → error)
    with pytest.raises(ConfigError, match="failed after 3 attempts"):
        _chat(stub, tmp_path, model="other").extract("Does she snap her fingers?")
    assert len(stub.requests) == 4
    assert chat.prompt_version == PROMPT_VERSION


def test_chat_malformed_response_errors_after_retries(stub_factory, tmp_path):
    stub = stub_factory([(200, _completion("Sure! The keywords are: blink"))] * 3)
    with pytest.raises(DataError, match="no valid keyword list.*after 3 attempts.*not JSON"):
        _chat(stub, tmp_path).extract("Does the person blink?")
    assert len(stub.requests) == 3


def test_chat_500_then_success_retries(stub_factory, tmp_path):
    stub = stub_factory([(500, "overloaded"), (429, "slow down"), (200, _completion('{"keywords": ["blink"]}'))])
    assert _chat(stub, tmp_path, cache_path="").extract("Does the person blink?") == ["blink"]
    assert len(stub.requests) == 3


def test_chat_client_error_is_not_retried(stub_factory, tmp_path):
    stub = stub_factory([(401, '{"error": "bad key"}')])
    with pytest.raises(ConfigError, match="HTTP 401"):
        _chat(stub, tmp_path).extract("x")
    assert len(stub.requests) == 1


def test_chat_config_from_env(monkeypatch, tmp_path):
    monkeypatch.delenv("VPBENCH_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("VPBENCH_LLM_MODEL", raising=False)
    with pytest.raises(ConfigError, match="VPBENCH_LLM_BASE_URL"):
        ChatKeywords(ChatKeywordsConfig())
    monkeypatch.setenv("VPBENCH_LLM_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("VPBENCH_LLM_MODEL", "m")
    monkeypatch.setenv("VPBENCH_CACHE_DIR", str(tmp_path))
    chat = get_keyword_extractor("chat")
    assert chat.url == "http://127.0.0.1:9/v1/chat/completions" and chat.model == "m"
    assert chat.cache_path == tmp_path / "keywords.sqlite"
    with pytest.raises(ConfigError, match="unknown key"):
        get_keyword_extractor("chat", modle="m")
    with pytest.raises(ConfigError, match="did you mean 'rules'"):
        get_keyword_extractor("rule")


@pytest.mark.parametrize(
    "content, error",
    [
        ('{"keywords": []}', "at least one"),
        ('{"words": ["a"]}', "at least one"),
        ('{"keywords": ["a", 3]}', "not a non-empty string"),
        ('{"keywords": ["one two three four five six seven"]}', "longer than 6 words"),
        ("blink", "not JSON"),
    ],
)
def test_parse_keywords_rejects(content, error):
    with pytest.raises(ValueError, match=error):
        parse_keywords(content, max_keywords=8, max_words=6)


def test_parse_keywords_accepts_list_and_truncates():
    assert parse_keywords('["a", "b", "c"]', max_keywords=2, max_words=6) == ["a", "b"]
