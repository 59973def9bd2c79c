"""The ``hf`` backend on a tiny random Qwen2.5-VL checkpoint (CPU, float32)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vpbench.errors import ConfigError
from vpbench.hashing import file_sha256
from vpbench.models.base import Prepared
from vpbench.models.hf_qwen_vl import WEIGHTS_SIDECAR, HFQwenVLBackend, weights_sha256
from vpbench.types import Frames, Message, Part, Request, Response


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from vpbench.models.tiny_qwen import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("hf") / "tiny", seed=0)


@pytest.fixture(scope="module")
def backend(ckpt: Path) -> HFQwenVLBackend:
    return HFQwenVLBackend(ckpt, device="cpu", dtype="float32", batch_size=4)


def frames(t: int, h: int, w: int, seed: int, source_fps: float = 30.0) -> Frames:
    """Random frames with qwen-vl-utils timestamps: t frames of a clip sampled at 2 fps."""
    total = int(t / 2 * source_fps)
    idx = np.linspace(0, total - 1, t).round().astype(int)
    arr = np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    return Frames(arr, tuple(i / source_fps for i in idx), source_fps, "test")


def request(sid: str, parts: tuple[Part, ...], *, max_new_tokens: int = 8, temperature: float = 0.0,
            top_p: float = 1.0, seed: int = 0, system: str | None = None) -> Request:
    msgs = ((Message("system", (Part("text", system),)),) if system else ()) + (Message("user", parts),)
    return Request(sample_id=sid, task="t", messages=msgs, video=None, options=(), protocol_fingerprint="p",
                   max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                   fingerprint=f"fp-{sid}")


def video_prep(sid: str, shape: tuple[int, int, int], pixel_seed: int, text: str, **kw) -> Prepared:
    return Prepared(request(sid, (Part("video"), Part("text", text)), **kw), frames(*shape, seed=pixel_seed))


def mixed_batch() -> list[Prepared]:
    return [
        video_prep("a", (4, 56, 56), 0, "What happens? A. jump B. run"),
        video_prep("b", (6, 56, 84), 1, "How many times does the car turn left?", system="Answer briefly."),
        video_prep("c", (2, 112, 56), 2, "Which direction? A. left B. right C. up D. down"),
        Prepared(request("d", (Part("text", "Text only: A or B?"),)), None),
    ]


def no_latency(rs: list[Response]) -> list[Response]:
    return [dataclasses.replace(r, latency_s=None) for r in rs]


def test_batched_greedy_is_deterministic_and_equals_unbatched(backend: HFQwenVLBackend, ckpt: Path):
    batch = mixed_batch()
    first = backend.generate(batch)
    second = backend.generate(batch)
    assert [r.sample_id for r in first] == ["a", "b", "c", "d"]
    assert all(r.error is None and r.latency_s is not None and r.latency_s > 0 for r in first)
    assert no_latency(first) == no_latency(second)
    single = HFQwenVLBackend(ckpt, device="cpu", dtype="float32", batch_size=1)
    assert no_latency([single.generate([p])[0] for p in batch]) == no_latency(first)
    # the mixed batch really is left-padded: prompt lengths differ
    assert len({r.n_input_tokens for r in first}) > 1


def _hf_video(frames: np.ndarray) -> dict[str, np.ndarray]:
    """``Qwen2VLImageProcessor``'s video patchify (no resize). 4.x: its ``videos=`` path. 5.x dropped that path
    (the video processor needs torchvision): HF processes each frame as an image (the frame repeated over the
    temporal axis) and we regroup consecutive frames into temporal patches; tests/test_qwen_inputs.py checks on
    4.x that this regrouping equals the ``videos=`` output exactly."""
    import transformers
    from transformers import Qwen2VLImageProcessor

    proc = Qwen2VLImageProcessor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if int(transformers.__version__.split(".")[0]) < 5:
            out = proc(images=None, videos=[list(frames)], do_resize=False, return_tensors="np")
            return {"pixel_values_videos": out["pixel_values_videos"], "video_grid_thw": out["video_grid_thw"]}
        tps, p = proc.temporal_patch_size, proc.patch_size
        if len(frames) % tps:  # HF pads a video by repeating its last frame
            frames = np.concatenate([frames] + [frames[-1:]] * (tps - len(frames) % tps))
        img = proc(images=list(frames), do_resize=False, return_tensors="np")
    (_, gh, gw), t = img["image_grid_thw"][0], len(frames)
    per = img["pixel_values"].reshape(t // tps, tps, gh * gw, 3, tps, p, p)[:, :, :, :, 0]
    pv = per.transpose(0, 2, 3, 1, 4, 5).reshape(t // tps * gh * gw, 3 * tps * p * p)
    return {"pixel_values_videos": pv, "video_grid_thw": np.array([[t // tps, gh, gw]], dtype=np.int64)}


def _reference(backend: HFQwenVLBackend, prep: Prepared, spg: float) -> tuple[dict, str, int]:
    """The same request through transformers' own pieces: slow image processor + chat template +
    plain ``model.generate``; returns (model inputs, text, n_new_tokens)."""
    import torch

    tok, model = backend.tokenizer, backend.model
    question = prep.request.messages[-1].parts[1].text
    conv = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    vid = {k: torch.from_numpy(v) for k, v in _hf_video(prep.frames.array).items()}
    n_vid = int(vid["video_grid_thw"].prod()) // 4
    enc = tok(text.replace("<|video_pad|>", "<|video_pad|>" * n_vid), return_tensors="pt")
    inputs = {**enc, "pixel_values_videos": vid["pixel_values_videos"], "video_grid_thw": vid["video_grid_thw"],
              "second_per_grid_ts": torch.tensor([spg])}
    try:  # transformers 5.x: the Qwen2.5-VL processor also returns mm_token_type_ids (the 3D-rope trigger)
        from transformers.processing_utils import ProcessorMixin

        ids_of = SimpleNamespace(image_token_ids=[model.config.image_token_id],
                                 video_token_ids=[model.config.video_token_id], audio_token_ids=[])
        inputs["mm_token_type_ids"] = torch.tensor(
            ProcessorMixin.create_mm_token_type_ids(ids_of, enc["input_ids"].tolist()))
    except AttributeError:  # 4.x: no such input
        pass
    with torch.inference_mode():
        out = model.generate(**inputs, do_sample=False, max_new_tokens=prep.request.max_new_tokens)
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    return inputs, tok.decode(new, skip_special_tokens=True), len(new)


@pytest.mark.parametrize("source_fps,t,total", [(30.0, 4, 60), (24.0, 6, 216), (25.0, 5, 100)])
def test_matches_transformers_reference_pipeline(backend: HFQwenVLBackend, source_fps: float, t: int,
                                                  total: int):
    import torch

    # t frames spread over a clip of `total` source frames (qwen-vl-utils linspace), so
    # qwen-vl-utils' fps = t / total * source_fps and second_per_grid_t = 2 / fps
    idx = np.linspace(0, total - 1, t).round().astype(int)
    arr = np.random.default_rng(t).integers(0, 256, (t, 56, 84, 3), dtype=np.uint8)
    fr = Frames(arr, tuple(i / source_fps for i in idx), source_fps, "test")
    prep = Prepared(request("ref", (Part("video"), Part("text", "Describe the motion.")), max_new_tokens=6), fr)
    spg = 2 / (t / total * source_fps)
    ref_inputs, text, n_new = _reference(backend, prep, spg)
    ours = backend.model_inputs([prep])
    assert set(ours) == set(ref_inputs)
    for k, v in ref_inputs.items():
        if v.is_floating_point():
            torch.testing.assert_close(ours[k], v.to(ours[k].dtype), rtol=0, atol=1e-6)
        else:
            assert torch.equal(ours[k], v), k
    [got] = backend.generate([prep])
    assert got.error is None
    assert (got.text, got.n_input_tokens, got.n_output_tokens) == (text, ref_inputs["input_ids"].shape[1], n_new)


def test_video_tokens_get_3d_rope_positions(backend: HFQwenVLBackend):
    """The backend's inputs make the model use Qwen2.5-VL's 3D (MRoPE) positions, written out by hand here.
    (transformers 5.x silently falls back to 1D text positions when ``mm_token_type_ids`` is missing.)"""
    import torch

    model = backend.model
    assert model.config.vision_config.tokens_per_second == 2
    prep = video_prep("p", (4, 56, 84), 3, "Q")  # 2 fps -> 1 s per temporal patch; grid (2, 4, 6)
    ours = backend.model_inputs([prep])
    assert ours["second_per_grid_ts"].tolist() == [1.0] and ours["video_grid_thw"].tolist() == [[2, 4, 6]]
    ids = ours["input_ids"][0]
    vid = (ids == model.config.video_token_id).nonzero().flatten()
    s, n = int(vid[0]), len(ids)
    assert vid.tolist() == list(range(s, s + 12))  # 2 x (4/2) x (6/2) merged tokens, contiguous
    # text: 0..s-1 | video: t = s + 2*1*[0, 1] (tokens_per_second * seconds per patch), h = s + [0, 1],
    # w = s + [0, 1, 2], row-major | text after the video: max video position + 1 = s + 3 onwards
    t = [s + 2 * k for k in (0, 1) for _ in range(6)]
    h = [s + r for _ in (0, 1) for r in (0, 1) for _ in range(3)]
    w = [s + c for _ in range(4) for c in (0, 1, 2)]
    after = list(range(s + 3, s + 3 + n - s - 12))
    pos = torch.tensor([list(range(s)) + axis + after for axis in (t, h, w)])[:, None, :]
    with torch.inference_mode():
        got = model(**ours).logits
        want = model(**ours, position_ids=pos).logits
        flat = model(**ours, position_ids=torch.arange(n).expand(3, 1, n)).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert (got - flat).abs().max() > 1e-3  # the positions matter on this model: the check can fail


def test_warns_once_when_transformers_4_would_collapse_temporal_positions(ckpt: Path):
    """4 frames 0.1 s apart: 0.2 s per temporal patch, which transformers 4.x truncates to 0 (every video
    token at temporal position 0); 2 fps (1 s per patch) is exact and says nothing."""
    import transformers

    fresh = HFQwenVLBackend(ckpt, device="cpu", dtype="float32")
    arr = np.random.default_rng(0).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    fast = Prepared(request("fast", (Part("video"), Part("text", "Q"))), Frames(arr, (0.0, 0.1, 0.2, 0.3), 10.0, "t"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh.model_inputs([video_prep("slow", (4, 56, 56), 0, "Q")])
        assert not [w for w in caught if "temporal position 0" in str(w.message)]
        fresh.model_inputs([fast, fast])
    hits = [str(w.message) for w in caught if "temporal position 0" in str(w.message)]
    if int(transformers.__version__.split(".")[0]) >= 5:
        assert hits == []
    else:
        assert len(hits) == 1 and "sample 'fast'" in hits[0] and "0.2 s per temporal patch" in hits[0]


def test_token_counts(backend: HFQwenVLBackend):
    tok = backend.tokenizer
    prep = video_prep("n", (4, 56, 56), 0, "Q", max_new_tokens=5)
    [r] = backend.generate([prep])
    base = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q"}]}],
        tokenize=True, add_generation_prompt=True, return_dict=False)  # 5.x defaults to a BatchEncoding
    # grid (2, 4, 4) -> 32 patches -> 8 video tokens replace the single <|video_pad|>
    assert r.n_input_tokens == len(base) - 1 + 8
    assert r.n_output_tokens == 5 and r.finish_reason == "length"


def test_stop_on_eos(ckpt: Path):
    import torch

    b = HFQwenVLBackend(ckpt, device="cpu", dtype="float32")
    with torch.no_grad():
        b.model.lm_head.weight.zero_()  # all logits 0 -> greedy picks id 0 = <|endoftext|>, an eos id
    assert b.tokenizer.convert_ids_to_tokens(0) == "<|endoftext|>"
    [r] = b.generate([video_prep("s", (2, 56, 56), 0, "Q", max_new_tokens=8)])
    assert (r.text, r.n_output_tokens, r.finish_reason, r.error) == ("", 1, "stop", None)


def test_sampling_is_seeded_and_batch_independent(backend: HFQwenVLBackend):
    import torch

    def sampled(seed: int) -> Prepared:
        return video_prep("s", (4, 56, 56), 0, "Q", max_new_tokens=12, temperature=1.0, top_p=0.95, seed=seed)

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    [a] = backend.generate([sampled(7)])
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG is untouched
    [b] = backend.generate([sampled(7)])
    in_batch = backend.generate(mixed_batch()[:2] + [sampled(7)])[2]
    [c] = backend.generate([sampled(8)])
    assert no_latency([a]) == no_latency([b]) == no_latency([in_batch])
    assert a.text != c.text
    greedy = backend.generate([video_prep("s", (4, 56, 56), 0, "Q", max_new_tokens=12)])[0]
    assert a.text != greedy.text


def test_per_sample_errors(backend: HFQwenVLBackend):
    ok = video_prep("ok", (2, 56, 56), 0, "Q")
    missing = Prepared(request("missing", (Part("video"), Part("text", "Q"))), None)
    stray = Prepared(request("stray", (Part("text", "Q"),)), frames(2, 56, 56, 0))
    bad_size = Prepared(request("bad", (Part("video"), Part("text", "Q"))), frames(2, 56, 50, 0))
    rs = backend.generate([missing, ok, stray, bad_size])
    assert [r.sample_id for r in rs] == ["missing", "ok", "stray", "bad"]
    assert rs[0].error is not None and "no frames" in rs[0].error and rs[0].text == ""
    assert rs[1].error is None and rs[1].n_output_tokens == 8
    assert rs[2].error is not None and "no video part" in rs[2].error
    assert rs[3].error is not None and "multiple of 28" in rs[3].error
    assert no_latency([rs[1]]) == no_latency(backend.generate([ok]))


def test_bad_paths_and_options(tmp_path: Path, ckpt: Path):
    with pytest.raises(ConfigError, match="local dir"):
        HFQwenVLBackend(tmp_path / "nope")
    with pytest.raises(ConfigError, match="hub id"):
        HFQwenVLBackend("Qwen/Qwen2.5-VL-7B-Instruct")
    with pytest.raises(ConfigError, match="config.json"):
        HFQwenVLBackend(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="llama"):
        HFQwenVLBackend(other)
    with pytest.raises(ConfigError, match="dtype"):
        HFQwenVLBackend(ckpt, dtype="fp8")
    with pytest.raises(ConfigError, match="device"):
        HFQwenVLBackend(ckpt, device="tpu")
    with pytest.raises(ConfigError, match="batch_size"):
        HFQwenVLBackend(ckpt, batch_size=0)


def test_fingerprint_and_weights_sidecar(tmp_path: Path, ckpt: Path):
    d = tmp_path / "copy"
    shutil.copytree(ckpt, d)
    weights = d / "model.safetensors"
    true_sha = file_sha256(weights)
    b = HFQwenVLBackend(d, device="cpu")
    fp = b.fingerprint()
    assert fp == HFQwenVLBackend(d, device="cpu").fingerprint()
    assert fp != HFQwenVLBackend(d, device="cpu", dtype="bfloat16").fingerprint()
    side = json.loads((d / WEIGHTS_SIDECAR).read_text())
    assert side["files"]["model.safetensors"]["sha256"] == true_sha
    # the sidecar is trusted while size and mtime match...
    side["files"]["model.safetensors"]["sha256"] = "0" * 64
    (d / WEIGHTS_SIDECAR).write_text(json.dumps(side))
    assert weights_sha256(d)[1] == {"model.safetensors": "0" * 64}
    # ...and ignored once the file changes
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert weights_sha256(d)[1] == {"model.safetensors": true_sha}
    # a changed chat template changes the fingerprint (it changes what the model is shown)
    (d / "chat_template.jinja").write_text("{{ messages }}")
    assert HFQwenVLBackend(d, device="cpu").fingerprint() != fp
    info = b.describe()
    assert info["weights_sha256"] == weights_sha256(d)[0] and info["dtype"] == "float32"
    assert info["device"] == "cpu" and {"torch", "transformers", "path"} <= set(info)
