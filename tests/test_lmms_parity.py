"""Parity with lmms-eval's Qwen2.5-VL path: the per-request steps of lmms-eval 0.7.3's ``qwen2_5_vl``
model (benchmarks/lmms_eval_side/qwen_path.py: whole-video decode, linspace frames, float64 HF
processor arithmetic, chat template, unbatched greedy generate) give byte-identical responses to
``vpbench run`` (fast-path decode, lookup-table patchify, batched generation) on the tiny model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vpbench import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench

    root = tmp_path_factory.mktemp("parity")
    synth_motionbench(root / "mb", seed=5, n_videos=3)
    return root, root / "mb", Path(build_tiny_qwen(root / "tiny", seed=1))


def test_vpbench_responses_are_byte_identical_to_the_lmms_eval_path(world, monkeypatch):
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from vpbench.engine.requests import build_request
    from vpbench.registry import get_task

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks" / "lmms_eval_side"))
    from qwen_path import respond

    root, data, model_dir = world
    out = root / "run"
    assert cli.main(["run", "--model", str(model_dir), "--tasks", "motionbench", "--data-root", str(data),
                     "--output", str(out), "--device", "cpu", "--batch-size", "3", "--no-cache",
                     "--set", "motionbench.protocol.nframes=4", "--set", "protocol.max_new_tokens=12"]) == 0
    ours = {json.loads(x)["sample_id"]: json.loads(x)["response"]
            for x in (out / "motionbench" / "records.jsonl").read_text(encoding="utf-8").splitlines()}
    task = get_task("motionbench")
    protocol = task.resolve_protocol(None, {"nframes": "4", "max_new_tokens": "12"})
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), local_files_only=True).eval()
    theirs = {}
    for s in task.load_samples(data):
        req = build_request(task, s, protocol)
        text = next(p.text for m in req.messages if m.role == "user" for p in m.parts if p.kind == "text")
        theirs[s.id] = respond(model, tok, str(task.video_path(data, req.video.path)), text, nframes=4,
                               min_pixels=protocol.min_pixels, max_pixels=protocol.max_pixels,
                               total_pixels=protocol.total_pixels, max_new_tokens=12, system=protocol.system_prompt)
    assert len(theirs) >= 4 and set(ours) == set(theirs)
    assert len(set(theirs.values())) > 1  # a real comparison: the responses differ between samples
    assert ours == theirs
    assert "lmms_eval" not in sys.modules  # the path is lmms-eval's logic, not the package
