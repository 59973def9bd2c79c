"""GPU checks (opt-in: `pytest -m gpu` on a CUDA machine). The tiny checkpoint through the `hf`
backend on CUDA: bf16 and fp32 load, batched greedy generation equals unbatched, and CPU/GPU fp32
agree on the generated text."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _prepared(n: int):
    from vpbench.engine.requests import build_request
    from vpbench.models.base import Prepared
    from vpbench.protocol import Protocol
    from vpbench.registry import get_task
    from vpbench.types import Frames, Sample, VideoRef

    task = get_task("motionbench")
    proto = Protocol(nframes=4, fps=None, max_new_tokens=6, prompt_template=task.protocol.prompt_template)
    out = []
    rng = np.random.default_rng(0)
    for i in range(n):
        s = Sample(id=f"s{i}", task="motionbench", video=VideoRef(f"v{i}.mp4"),
                   question="Which way?\nA. left\nB. right", options=("A. left", "B. right"), answer="A")
        arr = rng.integers(0, 255, size=(4, 56, 56 + 28 * (i % 2), 3), dtype=np.uint8)
        frames = Frames(arr, (0.0, 0.5, 1.0, 1.5), 2.0, proto.sampler_fingerprint(), 2.0)
        out.append(Prepared(build_request(task, s, proto), frames))
    return out


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batched_equals_unbatched_on_cuda(tmp_path, dtype):
    from vpbench.models.hf_qwen_vl import HFQwenVLBackend
    from vpbench.models.tiny_qwen import build_tiny_qwen

    ckpt = build_tiny_qwen(tmp_path / "tiny")
    batch = _prepared(4)
    one = HFQwenVLBackend(ckpt, device="cuda", dtype=dtype, batch_size=1)
    many = HFQwenVLBackend(ckpt, device="cuda", dtype=dtype, batch_size=4)
    a = [r.text for p in batch for r in one.generate([p])]
    b = [r.text for r in many.generate(batch)]
    assert a == b and all(r.error is None for r in many.generate(batch))


def test_cpu_and_cuda_fp32_agree(tmp_path):
    from vpbench.models.hf_qwen_vl import HFQwenVLBackend
    from vpbench.models.tiny_qwen import build_tiny_qwen

    ckpt = build_tiny_qwen(tmp_path / "tiny")
    batch = _prepared(2)
    cpu = HFQwenVLBackend(ckpt, device="cpu", dtype="float32").generate(batch)
    gpu = HFQwenVLBackend(ckpt, device="cuda", dtype="float32").generate(batch)
    assert [r.text for r in cpu] == [r.text for r in gpu]
