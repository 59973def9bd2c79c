"""hf and vLLM agree on a small checkpoint's greedy answers (needs a CUDA GPU and vllm installed:
``pytest -m gpu tests/test_vllm_parity.py``; a missing vllm fails here, it is never skipped)."""

from __future__ import annotations

import json

import pytest

from vpbench import cli

pytestmark = pytest.mark.gpu


def test_hf_and_vllm_greedy_answers_agree(tmp_path):
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench

    synth_motionbench(tmp_path / "mb", seed=3, n_videos=4)
    model = build_tiny_qwen(tmp_path / "tiny", seed=0)
    answers = {}
    for name, spec in (("hf", str(model)), ("vllm", f"vllm:{model},enforce_eager=1,gpu_memory_utilization=0.3")):
        out = tmp_path / name
        assert cli.main(["run", "--model", spec, "--tasks", "motionbench", "--data-root", str(tmp_path / "mb"),
                         "--output", str(out), "--device", "cuda", "--dtype", "float32", "--no-cache",
                         "--set", "protocol.max_new_tokens=8"]) == 0
        rows = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
        assert all(r["error"] is None for r in rows)
        answers[name] = {r["sample_id"]: r["response"] for r in rows}
    assert answers["vllm"] == answers["hf"]
