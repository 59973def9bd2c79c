"""vpbench.llm.ChatClient against a local stub OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vpbench import llm
from vpbench.errors import ConfigError, DataError
from vpbench.llm import ChatClient, ChatEndpoint, MalformedResponse, resolve_cache_path

MESSAGES = [{"role": "system", "content": "Answer with an integer."}, {"role": "user", "content": "6 * 7?"}]


def _completion(content: str) -> str:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


class _Stub:
    """Serves scripted (status, body, headers) answers in order and records the requests it got."""

    def __init__(self, script: list[tuple[int, str, dict[str, str]]]):
        self.script = list(script)
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, text, headers = stub.script.pop(0) if stub.script else (500, "script exhausted", {})
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory():
    stubs: list[_Stub] = []

    def make(*answers):
        """answers: (status, body) or (status, body, headers); a str is a 200 chat completion with that text."""
        script = []
        for a in answers:
            if isinstance(a, str):
                a = (200, _completion(a))
            script.append(a if len(a) == 3 else (*a, {}))
        stubs.append(_Stub(script))
        return stubs[-1]

    yield make
    for s in stubs:
        s.close()


@pytest.fixture
def sleeps(monkeypatch):
    """The backoff delays the client slept (nothing actually sleeps)."""
    got: list[float] = []
    monkeypatch.setattr(llm.time, "sleep", got.append)
    return got


def _int(content: str) -> int:
    try:
        return int(content.strip())
    except ValueError as e:
        raise MalformedResponse(f"{content!r} is not an integer") from e


def _client(stub: _Stub, cache=None, **kw) -> ChatClient:
    opts = dict(base_url=stub.base_url, model="tiny-llm", api_key="sk-test", timeout_s=5.0, max_retries=2,
                backoff_s=0.5, backoff_max_s=10.0)
    opts.update(kw)
    return ChatClient(ChatEndpoint(**opts), cache, label="test endpoint", prompt_version="t-v1")


def test_success_sends_an_openai_request(stub_factory, sleeps):
    stub = stub_factory(" 42\n")
    assert _client(stub, temperature=0.3, max_tokens=17).complete(MESSAGES, validate=_int, cache_key={"t": 1}) == 42
    (req,) = stub.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"] == {"model": "tiny-llm", "messages": MESSAGES, "temperature": 0.3, "max_tokens": 17}
    assert sleeps == []


def test_500_then_success(stub_factory, sleeps):
    stub = stub_factory((500, "overloaded"), "7")
    assert _client(stub).complete(MESSAGES, validate=_int, cache_key={}) == 7
    assert len(stub.requests) == 2 and sleeps == [0.5]


def test_429_backoff_honours_retry_after_up_to_the_cap(stub_factory, sleeps):
    stub = stub_factory((429, "slow down", {"Retry-After": "3"}), (503, "busy"),
                        (429, "slow down", {"Retry-After": "100"}), "5")
    assert _client(stub, max_retries=3).complete(MESSAGES, validate=_int, cache_key={}) == 5
    # attempt 0: max(0.5, 3) = 3; attempt 1: 0.5 * 2 = 1; attempt 2: max(0.5 * 4, 100) capped at 10
    assert sleeps == [3.0, 1.0, 10.0] and len(stub.requests) == 4


def test_malformed_then_valid(stub_factory, sleeps):
    stub = stub_factory("forty-two", (200, "<html>not a completion</html>"), "42")
    assert _client(stub).complete(MESSAGES, validate=_int, cache_key={}) == 42
    assert len(stub.requests) == 3 and sleeps == [0.5, 1.0]


def test_malformed_forever_is_a_data_error(stub_factory, sleeps):
    stub = stub_factory(*["forty-two"] * 3)
    with pytest.raises(DataError, match=r"test endpoint .*prompt t-v1\) gave no valid integer after 3 attempts; "
                                        r"last problem: 'forty-two' is not an integer\. try harder"):
        _client(stub).complete(MESSAGES, validate=_int, cache_key={}, what="integer", hint=". try harder")
    assert len(stub.requests) == 3


def test_other_validate_errors_are_not_retried(stub_factory, sleeps):
    stub = stub_factory("1", "2")

    def boom(content: str) -> int:
        raise RuntimeError("validator bug")

    with pytest.raises(RuntimeError, match="validator bug"):
        _client(stub).complete(MESSAGES, validate=boom, cache_key={})
    assert len(stub.requests) == 1


@pytest.mark.parametrize("status", [401, 404])
def test_client_errors_are_config_errors_at_once(stub_factory, sleeps, status):
    stub = stub_factory((status, '{"error": "nope"}'), "1")
    with pytest.raises(ConfigError, match=f"answered HTTP {status}.*VPBENCH_LLM_API_KEY"):
        _client(stub).complete(MESSAGES, validate=_int, cache_key={})
    assert len(stub.requests) == 1 and sleeps == []


def test_unreachable_is_a_config_error(sleeps):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient(ChatEndpoint(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, timeout_s=5.0))
    with pytest.raises(ConfigError, match="failed after 2 attempts: URLError.*is the server up"):
        client.complete(MESSAGES, validate=_int, cache_key={})
    assert sleeps == [1.0]


def test_5xx_forever_is_a_config_error(stub_factory, sleeps):
    stub = stub_factory(*[(502, "bad gateway")] * 3)
    with pytest.raises(ConfigError, match="failed after 3 attempts: HTTP 502: bad gateway"):
        _client(stub).complete(MESSAGES, validate=_int, cache_key={})
    assert len(stub.requests) == 3


def test_cache_hit_makes_no_request(stub_factory, tmp_path, sleeps):
    stub = stub_factory("42", "43", "44")
    cache = tmp_path / "llm.sqlite"
    assert _client(stub, cache).complete(MESSAGES, validate=_int, cache_key={"task": "a"}) == 42
    assert _client(stub, cache).complete(MESSAGES, validate=_int, cache_key={"task": "a"}) == 42
    assert len(stub.requests) == 1
    # the key covers cache_key, the model and the messages
    assert _client(stub, cache).complete(MESSAGES, validate=_int, cache_key={"task": "b"}) == 43
    assert _client(stub, cache, model="other").complete(MESSAGES, validate=_int, cache_key={"task": "a"}) == 44
    assert len(stub.requests) == 3
    c = _client(stub, cache)
    assert c.key(MESSAGES, {"task": "a"}) != c.key(MESSAGES[:1], {"task": "a"})
    # without a cache every call asks
    stub2 = stub_factory("1", "2")
    assert [_client(stub2).complete(MESSAGES, validate=_int, cache_key={}) for _ in range(2)] == [1, 2]


def test_stale_cache_entry_is_asked_again(stub_factory, tmp_path, sleeps):
    stub = stub_factory("42", "8")
    cache = tmp_path / "llm.sqlite"
    assert _client(stub, cache).complete(MESSAGES, validate=_int, cache_key={}) == 42

    def small(content: str) -> int:
        v = _int(content)
        if v >= 10:
            raise MalformedResponse(f"{v} is too large")
        return v

    assert _client(stub, cache).complete(MESSAGES, validate=small, cache_key={}) == 8
    assert _client(stub, cache).complete(MESSAGES, validate=small, cache_key={}) == 8  # overwritten entry
    assert len(stub.requests) == 2


def test_api_key_is_never_cached(stub_factory, tmp_path, sleeps):
    stub = stub_factory("12345")
    cache = tmp_path / "llm.sqlite"
    client = _client(stub, cache, api_key="sk-SECRET-abc123")
    assert client.complete(MESSAGES, validate=_int, cache_key={"task": "keys"}) == 12345
    assert stub.requests[0]["auth"] == "Bearer sk-SECRET-abc123"
    raw = cache.read_bytes()
    assert b"12345" in raw and b"keys" in raw  # the answer and its key fields are stored ...
    assert b"sk-SECRET-abc123" not in raw  # ... the API key is not
    assert "sk-SECRET" not in repr(client)


def test_env_fallbacks_and_missing_config(stub_factory, monkeypatch, sleeps):
    stub = stub_factory("3")
    monkeypatch.setenv("VPBENCH_LLM_BASE_URL", stub.base_url + "/")
    monkeypatch.setenv("VPBENCH_LLM_MODEL", "env-model")
    monkeypatch.setenv("VPBENCH_LLM_API_KEY", "sk-env")
    client = ChatClient(ChatEndpoint())
    assert client.url == stub.base_url + "/chat/completions" and client.model == "env-model"
    assert client.complete(MESSAGES, validate=_int, cache_key={}) == 3
    assert stub.requests[0]["auth"] == "Bearer sk-env" and stub.requests[0]["body"]["model"] == "env-model"
    monkeypatch.delenv("VPBENCH_LLM_MODEL")
    with pytest.raises(ConfigError, match="needs base_url and model.*VPBENCH_LLM_MODEL"):
        ChatClient(ChatEndpoint())
    with pytest.raises(ConfigError, match="max_retries must be >= 0"):
        ChatEndpoint(max_retries=-1)


def test_resolve_cache_path(monkeypatch, tmp_path):
    monkeypatch.setenv("VPBENCH_CACHE_DIR", str(tmp_path))
    assert resolve_cache_path(None, "x.sqlite") == tmp_path / "x.sqlite"
    assert resolve_cache_path("", "x.sqlite") is None
    assert resolve_cache_path(str(tmp_path / "b.sqlite"), "x.sqlite") == tmp_path / "b.sqlite"


def test_endpoint_repr_hides_the_key():
    assert "sk-hidden" not in repr(ChatEndpoint(base_url="http://x/v1", model="m", api_key="sk-hidden"))
