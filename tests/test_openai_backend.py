"""``openai:URL#MODEL`` against a local OpenAI-compatible server started by the test on 127.0.0.1
that fails every third request (HTTP 500 / 429 alternately) and stalls every seventh.

The server answers a question correctly only when the request carried the clip's frames as images
(``len(frames)`` parts), so a text-only request would score wrong, never right.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vpbench import cli
from vpbench.errors import ConfigError
from vpbench.models.openai_compat import AdaptiveLimit, OpenAIOptions, build_body, encode_image
from vpbench.registry import get_task
from vpbench.testing.openai_server import FakeChatServer
from vpbench.types import Frames, Message, Part, Request

SECRET = "sk-test-0123456789-secret"


def _question_answers(data: Path) -> tuple[dict[str, str], int]:
    """question text → the server's reply; the reply is wrong for every third scorable sample."""
    replies, n_right = {}, 0
    for i, s in enumerate(get_task("motionbench").load_samples(data)):
        if s.answer is None:
            replies[s.question] = "A"
            continue
        wrong = i % 3 == 0
        replies[s.question] = ("B" if s.answer == "A" else "A") if wrong else s.answer
        n_right += not wrong
    return replies, n_right


def _answer_fn(replies: dict[str, str], min_images: int):
    def answer(body: dict) -> str:
        content = body["messages"][-1]["content"]
        images = sum(p["type"] == "image_url" for p in content)
        text = "".join(p.get("text", "") for p in content)
        hit = [a for q, a in replies.items() if q.strip() in text]
        assert len(hit) == 1, text
        return hit[0] if images >= min_images else "Z"
    return answer


def _run(spec: str, data: Path, out: Path) -> int:
    return cli.main(["run", "--model", spec, "--tasks", "motionbench", "--data-root", str(data),
                     "--output", str(out)])


def _result(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["results"]["motionbench"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("mb")
    get_task("motionbench").synth(data, 0)
    return data


def test_scores_a_generated_task_through_a_faulty_server(synth_data, tmp_path, monkeypatch):
    """Done-when: scores a generated task through the local test server, survives its faults (every
    3rd request fails, every 7th stalls past the timeout), reports the failures; the key is sent
    and written nowhere."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    replies, n_right = _question_answers(synth_data)
    out = tmp_path / "run"
    with FakeChatServer(_answer_fn(replies, 4), fail_every=3, stall_every=7, stall_s=3.0) as server:
        # 1) no retries, one request at a time: request k is sample k, so the failures are known by hand
        spec = f"openai:{server.url}#tiny-qwen,concurrency=1,retries=0,timeout=1.5"
        assert _run(spec, synth_data, out) == 0
        failed_by_hand = [k for k in range(1, 19) if k % 3 == 0 or k % 7 == 0]  # 3 6 7 9 12 14 15 18
        res = _result(out)
        assert res["counts"]["n_failed"] == len(failed_by_hand) == 8
        records = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
        errors = [r["error"] for r in records if r["error"]]
        assert len(errors) == 8
        assert sum("HTTP 500" in e for e in errors) == 3 and sum("HTTP 429" in e for e in errors) == 3
        assert sum("timed out after 1.5 s" in e for e in errors) == 2
        assert (server.stats.failed, server.stats.throttled, server.stats.stalled) == (3, 3, 2)
        # 2) the same command with retries: only the failed samples are sent again and all succeed
        spec = f"openai:{server.url}#tiny-qwen,concurrency=4,retries=6,timeout=1.5,backoff=0.05"
        n_before = server.stats.requests
        assert _run(spec, synth_data, out) == 0
        assert server.stats.requests - n_before >= 8
    res = _result(out)
    assert res["counts"]["n_failed"] == 0 and res["counts"]["n_evaluated"] == 18
    dev = {m["name"]: m for m in res["metrics"]}["Dev-AVG"]
    assert dev["n"] == 14 and dev["value"] == pytest.approx(n_right / 14)
    manifest = json.loads((out / "manifest.json").read_text())
    last = manifest["tasks"]["motionbench"]["invocations"][-1]  # the resume; counters are cumulative
    assert last["n_generated"] == 8 and last["n_resumed"] == 10
    assert manifest["tasks"]["motionbench"]["n_generated"] == 18 + 8
    assert server.stats.auth == {f"Bearer {SECRET}"}
    assert all(n >= 4 for n in server.stats.images)
    for f in out.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f  # the key is never written


def test_throttling_halves_the_limit_and_successes_restore_it():
    import asyncio

    lim = AdaptiveLimit(8)

    async def go():
        lim.bind()
        for _ in range(3):
            await lim.acquire()
        await lim.release(throttled=True)   # 8 → 4
        await lim.release(throttled=True)   # 4 → 2
        await lim.release(throttled=False)  # 2 → 2.5
        return lim.limit, lim.in_flight, lim.n_throttled

    assert asyncio.run(go()) == (2.5, 0, 2)


def test_request_body_images_in_place_of_the_video_part():
    frames = Frames(np.zeros((4, 28, 56, 3), np.uint8), (0.0, 0.5, 1.0, 1.5), 10.0, "s", sample_fps=2.0)
    req = Request("s1", "t", (Message("system", (Part("text", "be brief"),)),
                              Message("user", (Part("video"), Part("text", "What moves?")))),
              None, (), "p", 8, 0.0, 1.0, 3, "fp")
    opts = OpenAIOptions.parse("http://h:1/v1#m,image_format=png")
    body = build_body(req, frames, opts)
    assert [p["type"] for p in body["messages"][1]["content"]] == ["image_url"] * 4 + ["text"]
    assert body["messages"][0] == {"role": "system", "content": [{"type": "text", "text": "be brief"}]}
    assert (body["model"], body["max_tokens"], body["temperature"], body["seed"]) == ("m", 8, 0.0, 3)
    assert body["messages"][1]["content"][0]["image_url"]["url"] == encode_image(frames.array[0], "png", 95)
    video = build_body(req, frames, OpenAIOptions.parse("http://h:1/v1#m,video=video"))
    assert [p["type"] for p in video["messages"][1]["content"]] == ["video_url", "text"]
    assert video["mm_processor_kwargs"] == {"fps": 2.0}
    with pytest.raises(ValueError, match="no frames were decoded"):
        build_body(req, None, opts)


@pytest.mark.parametrize("arg, message", [
    ("localhost:8000#m", "must start with http"),
    ("http://h/v1#m,concurency=4", r"unknown option 'concurency' \(did you mean 'concurrency'\?\)"),
    ("http://h/v1#m,concurrency=0", "need concurrency >= 1"),
    ("http://h/v1#m,timeout=x", "is not a float"),
    ("http://h/v1#m,video=frames", "video must be 'images' or 'video'"),
])
def test_spec_options_are_strict(arg, message):
    with pytest.raises(ConfigError, match=message):
        OpenAIOptions.parse(arg)


def test_wrong_model_or_key_stops_the_run(synth_data, tmp_path):
    class NotFound(FakeChatServer):
        async def _handle(self, request):
            from aiohttp import web

            return web.json_response({"error": "model 'x' not found"}, status=404)

    with NotFound(lambda b: "A") as server:
        assert _run(f"openai:{server.url}#x", synth_data, tmp_path / "r") == 2
