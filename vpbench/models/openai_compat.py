"""``openai:URL[#MODEL][,key=value...]`` — any OpenAI-compatible ``/v1/chat/completions`` server.

vLLM's and SGLang's servers, or a hosted API. vpbench decodes, samples and resizes the frames
itself (the same frames as ``hf``) and sends them as images — one ``image_url`` part per frame, in
order, where the request's video part stands — or, with ``video=video``, as one ``video_url`` part
(an mp4 of exactly those frames at the sampling rate, with ``mm_processor_kwargs.fps`` for vLLM).

Spec options (after the model, comma-separated; unknown keys are an error with a "did you mean"):
``concurrency`` (most requests in flight, default 8), ``timeout`` (s per attempt, 120), ``retries``
(extra attempts, 4), ``backoff`` (s, 1; doubled per retry, capped at ``backoff_max`` 30, raised to
a Retry-After header), ``video`` (``images`` | ``video``), ``image_format`` (``jpeg`` | ``png``),
``jpeg_quality`` (95), ``key_env`` (the environment variable holding the API key, default
``OPENAI_API_KEY``; the key is read from the environment only and is never written anywhere).

Rate limits: concurrency adapts (AIMD) — a 429 halves the number of requests allowed in flight,
each success adds ``1/limit`` back, up to ``concurrency``. Retried: 429, 5xx, timeouts, connection
errors and answers without a message. 401/403/404 stop the run (wrong key, URL or model: every
request would fail). A sample whose attempts all fail gets a record with ``error`` set — counted
as ``n_failed``, retried on resume, never answered from the text alone.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

from vpbench.errors import ConfigError
from vpbench.hashing import stable_hash
from vpbench.models.base import BackendBase, Prepared, parse_spec_options
from vpbench.types import Frames, Request, Response

_FATAL = (401, 403, 404)


@dataclass(frozen=True)
class OpenAIOptions:
    base_url: str
    model: str = ""
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 30.0
    video: str = "images"
    image_format: str = "jpeg"
    jpeg_quality: int = 95
    key_env: str = "OPENAI_API_KEY"

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"openai backend: URL must start with http:// or https://, got {self.base_url!r} "
                              f"(form: openai:http://host:8000/v1#MODEL)")
        if self.concurrency < 1 or self.retries < 0 or self.timeout <= 0 or self.backoff < 0:
            raise ConfigError("openai backend: need concurrency >= 1, retries >= 0, timeout > 0, backoff >= 0 "
                              f"(got {self.concurrency}, {self.retries}, {self.timeout}, {self.backoff})")
        if self.video not in ("images", "video"):
            raise ConfigError(f"openai backend: video must be 'images' or 'video', got {self.video!r}")
        if self.image_format not in ("jpeg", "png") or not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("openai backend: image_format must be jpeg or png and jpeg_quality 1..100")

    @classmethod
    def parse(cls, arg: str) -> "OpenAIOptions":
        """``URL[#MODEL][,key=value...]``."""
        head, *pairs = arg.split(",")
        url, _, model = head.partition("#")
        values = parse_spec_options(cls, pairs, ("base_url", "model"), "openai")
        return cls(base_url=url.rstrip("/"), model=model, **values)


class AdaptiveLimit:
    """How many requests may be in flight: AIMD between 1 and ``ceiling`` (see module docstring)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.in_flight = 0
        self.n_throttled = 0
        self._cond: asyncio.Condition | None = None

    def bind(self) -> None:
        """A fresh condition for the current event loop (each ``generate`` call runs its own loop)."""
        self._cond = asyncio.Condition()
        self.in_flight = 0

    async def acquire(self) -> None:
        assert self._cond is not None
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1

    async def release(self, throttled: bool) -> None:
        assert self._cond is not None
        async with self._cond:
            self.in_flight -= 1
            if throttled:
                self.n_throttled += 1
                self.limit = max(1.0, self.limit / 2)
            else:
                self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
            self._cond.notify_all()


def encode_image(frame: Any, fmt: str, quality: int) -> str:
    """One RGB uint8 [H, W, 3] frame as a ``data:`` URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format=fmt.upper(), **({"quality": quality} if fmt == "jpeg" else {}))
    return f"data:image/{fmt};base64,{base64.b64encode(buf.getvalue()).decode()}"


def encode_video(frames: Frames, fps: float) -> str:
    """The frames as an mp4 (mpeg4, near-lossless) at ``fps``, as a ``data:`` URL."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=max(1, round(fps)))
        s.height, s.width = frames.array.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.options = {"qscale": "2"}
        for img in frames.array:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return f"data:video/mp4;base64,{base64.b64encode(buf.getvalue()).decode()}"


def build_body(request: Request, frames: Frames | None, opts: OpenAIOptions) -> dict[str, Any]:
    """The chat-completions JSON body for one request (no key: that goes in a header)."""
    from vpbench.models.qwen_inputs import sample_fps

    messages = []
    for m in request.messages:
        content: list[dict[str, Any]] = []
        for p in m.parts:
            if p.kind == "text":
                content.append({"type": "text", "text": p.text})
            elif frames is None:
                raise ValueError(f"{request.sample_id}: the request shows a video but no frames were decoded")
            elif opts.video == "video":
                content.append({"type": "video_url", "video_url": {"url": encode_video(frames, sample_fps(frames))}})
            else:
                content += [{"type": "image_url", "image_url": {"url": encode_image(f, opts.image_format,
                                                                                     opts.jpeg_quality)}}
                            for f in frames.array]
        messages.append({"role": m.role, "content": content})
    body: dict[str, Any] = {"model": opts.model, "messages": messages, "max_tokens": request.max_new_tokens,
                            "temperature": request.temperature, "top_p": request.top_p, "seed": request.seed}
    if opts.video == "video" and frames is not None:
        body["mm_processor_kwargs"] = {"fps": sample_fps(frames)}
    return body


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, throttled: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.throttled = throttled


class OpenAIBackend(BackendBase):
    name = "openai"
    needs_frames = True

    def __init__(self, opts: OpenAIOptions, batch_size: int = 1) -> None:
        self.opts = opts
        self.batch_size = max(batch_size, 2 * opts.concurrency)
        self.limit = AdaptiveLimit(opts.concurrency)
        self.n_attempts = 0
        self.n_failed = 0

    def fingerprint(self) -> str:
        o = self.opts
        return stable_hash({"backend": self.name, "url": o.base_url, "model": o.model, "video": o.video,
                            "image_format": o.image_format, "jpeg_quality": o.jpeg_quality})

    def describe(self) -> dict[str, Any]:
        o = self.opts  # never the key itself
        return {"backend": self.name, "url": o.base_url, "model": o.model, "video": o.video,
                "image_format": o.image_format, "concurrency": o.concurrency, "timeout_s": o.timeout,
                "retries": o.retries, "key_env": o.key_env, "key_set": bool(os.environ.get(o.key_env)),
                "fingerprint": self.fingerprint()}

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        return asyncio.run(self._generate_all(batch))

    async def _generate_all(self, batch: Sequence[Prepared]) -> list[Response]:
        import aiohttp

        self.limit.bind()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.opts.key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = aiohttp.ClientTimeout(total=self.opts.timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            return list(await asyncio.gather(*(self._one(session, p) for p in batch)))

    async def _one(self, session: Any, p: Prepared) -> Response:
        sid = p.request.sample_id
        try:
            body = build_body(p.request, p.frames, self.opts)
        except ValueError as e:
            return Response(sid, "", error=str(e))
        last, last_retry_after = "", None
        for attempt in range(1 + self.opts.retries):
            if attempt:
                await asyncio.sleep(self._delay(attempt, last_retry_after))
            last_retry_after = None
            await self.limit.acquire()
            throttled = False
            t0 = time.perf_counter()
            try:
                self.n_attempts += 1
                data = await self._post(session, body)
                return self._response(sid, data, time.perf_counter() - t0)
            except _Retryable as e:
                last, last_retry_after, throttled = str(e), e.retry_after, e.throttled
            finally:
                await self.limit.release(throttled)
        self.n_failed += 1
        return Response(sid, "", error=f"openai backend: {1 + self.opts.retries} attempts failed; last: {last}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.opts.backoff * 2 ** (attempt - 1), self.opts.backoff_max)
        return min(max(delay, retry_after or 0.0), self.opts.backoff_max)

    async def _post(self, session: Any, body: dict[str, Any]) -> dict[str, Any]:
        import aiohttp

        url = f"{self.opts.base_url}/chat/completions"
        try:
            async with session.post(url, json=body) as r:
                text = await r.text()
                if r.status in _FATAL:
                    raise ConfigError(f"{url} answered HTTP {r.status}: {text[:200]}; check the URL, the model "
                                      f"name after '#', and the key in ${self.opts.key_env}")
                if r.status == 429 or r.status >= 500:
                    ra = r.headers.get("Retry-After", "")
                    raise _Retryable(f"HTTP {r.status}", float(ra) if ra.replace(".", "", 1).isdigit() else None,
                                     throttled=r.status == 429)
                if r.status >= 400:  # a bad request for this sample (e.g. too many tokens): not retried
                    return {"error": f"HTTP {r.status}: {text[:300]}"}
                try:
                    return json.loads(text)
                except ValueError as e:
                    raise _Retryable(f"not JSON: {text[:100]!r}") from e
        except asyncio.TimeoutError as e:
            raise _Retryable(f"timed out after {self.opts.timeout:g} s") from e
        except aiohttp.ClientError as e:
            raise _Retryable(f"connection error: {e}") from e

    def _response(self, sid: str, data: dict[str, Any], latency: float) -> Response:
        if "error" in data and "choices" not in data:
            self.n_failed += 1
            return Response(sid, "", latency_s=latency, error=f"openai backend: {data['error']}")
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError) as e:
            raise _Retryable(f"not a chat completion ({e!r})") from e
        usage = data.get("usage") or {}
        return Response(sid, text, n_input_tokens=usage.get("prompt_tokens"),
                        n_output_tokens=usage.get("completion_tokens"), latency_s=round(latency, 4),
                        finish_reason=choice.get("finish_reason"))


def from_spec(arg: str, spec: str, options: Any) -> OpenAIBackend:
    return OpenAIBackend(OpenAIOptions.parse(arg), batch_size=options.batch_or(1))
