"""A local OpenAI-compatible chat server with injected faults, for tests and benchmarks.

``FakeChatServer(answer, fail_every=3, stall_every=0, stall_s=5, latency_s=0)`` serves
``POST /v1/chat/completions`` on 127.0.0.1 (a free port) from a background thread. Request n
(1-based, in arrival order) fails when ``n % fail_every == 0`` — alternately HTTP 500 and HTTP 429
with ``Retry-After: 0`` — and stalls ``stall_s`` seconds before answering when
``n % stall_every == 0``; every other request waits ``latency_s`` (a model's service time) and
answers ``answer(body)``. ``stats`` counts requests, faults, stalls, image parts per request and
the most requests in flight at once.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class ServerStats:
    requests: int = 0
    failed: int = 0
    throttled: int = 0
    stalled: int = 0
    answered: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    images: list[int] = field(default_factory=list)  # image parts of each answered request
    auth: set[str] = field(default_factory=set)  # Authorization headers seen


class FakeChatServer:
    def __init__(self, answer: Callable[[dict[str, Any]], str], *, fail_every: int = 0, stall_every: int = 0,
                 stall_s: float = 5.0, latency_s: float = 0.0) -> None:
        self.answer = answer
        self.fail_every, self.stall_every, self.stall_s, self.latency_s = fail_every, stall_every, stall_s, latency_s
        self.stats = ServerStats()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        st = self.stats
        st.requests += 1
        n = st.requests
        st.auth.add(request.headers.get("Authorization", ""))
        body = await request.json()
        st.in_flight += 1
        st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            if self.fail_every and n % self.fail_every == 0:
                if (n // self.fail_every) % 2:
                    st.failed += 1
                    return web.json_response({"error": {"message": "injected failure"}}, status=500)
                st.throttled += 1
                return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                         headers={"Retry-After": "0"})
            if self.stall_every and n % self.stall_every == 0:
                st.stalled += 1
                await asyncio.sleep(self.stall_s)
            elif self.latency_s:
                await asyncio.sleep(self.latency_s)
            images = sum(1 for m in body["messages"] for p in m["content"] if p.get("type") == "image_url")
            st.images.append(images)
            st.answered += 1
            text = self.answer(body)
            return web.json_response({
                "id": f"cmpl-{n}", "object": "chat.completion", "model": body.get("model", ""),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10 + images, "completion_tokens": 1, "total_tokens": 11 + images}})
        finally:
            st.in_flight -= 1

    def _serve(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def __enter__(self) -> "FakeChatServer":
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("fake chat server did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
