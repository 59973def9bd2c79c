"""End to end through the real `hf` backend: generated MotionBench data in its native format, a tiny
random Qwen2.5-VL checkpoint, the CLI — and the perception-gap pass on the same run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vpbench import cli


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench

    synth_motionbench(root / "mb", seed=3, n_videos=4)
    data = root / "mb"
    model = build_tiny_qwen(root / "tiny", seed=0)
    return root, Path(data), Path(model)


def test_hf_backend_runs_the_same_path_as_replay(world):
    root, data, model = world
    out = root / "run"
    args = ["run", "--model", str(model), "--tasks", "motionbench", "--data-root", str(data), "--output", str(out),
            "--batch-size", "2", "--device", "cpu", "--set", "protocol.max_new_tokens=4"]
    assert cli.main(args) == 0
    records = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    n = len(records)
    assert n == sum(len(json.loads(line)["qa"]) for line in (data / "video_info.meta.jsonl").read_text().splitlines())
    assert all(r["frame_timestamps_s"] and r["error"] is None for r in records)
    # fps=1 on 3 s clips → 4 frames (min_frames), even count
    assert {len(r["frame_timestamps_s"]) for r in records} == {4}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "hf" and len(manifest["model"]["weights_sha256"]) == 64
    assert manifest["tasks"]["motionbench"]["protocol"]["max_new_tokens"] == 4
    # replaying the hf responses through `replay:` gives the identical result
    preds = root / "preds.jsonl"
    preds.write_text("".join(json.dumps({"sample_id": r["sample_id"], "response": r["response"]}) + "\n"
                             for r in records))
    assert cli.main(["run", "--model", f"replay:{preds}", "--tasks", "motionbench", "--data-root", str(data),
                     "--output", str(root / "replayed"), "--set", "protocol.max_new_tokens=4"]) == 0
    a = json.loads((out / "results.json").read_text())["results"]["motionbench"]["metrics"]
    b = json.loads((root / "replayed" / "results.json").read_text())["results"]["motionbench"]["metrics"]
    assert a == b
    # a second run into the same dir resumes: nothing generated
    assert cli.main(args) == 0
    info = json.loads((out / "manifest.json").read_text())["tasks"]["motionbench"]
    assert info["invocations"][-1]["n_generated"] == 0 and info["invocations"][-1]["n_resumed"] == n
    assert info["n_generated"] == n  # cumulative over invocations


@pytest.fixture(scope="module")
def gap_run(world):
    root, data, model = world
    out = root / "gap"
    assert cli.main(["run", "--model", str(model), "--tasks", "motionbench", "--data-root", str(data),
                     "--output", str(out), "--device", "cpu", "--perception-gap",
                     "--set", "protocol.max_new_tokens=4", "--set", "protocol.fps=10",
                     "--set", "gap.scorer=motion_energy", "--set", "stats.n_boot=200"]) == 0
    return out


def test_perception_gap_writes_both_scores_and_delta(gap_run):
    out = gap_run
    result = json.loads((out / "motionbench" / "result.json").read_text())
    gap = result["perception_gap"]
    assert set(gap) == {"full", "key_absent", "delta"}
    assert gap["delta"]["value"] == pytest.approx(gap["full"]["value"] - gap["key_absent"]["value"])
    assert gap["delta"]["ci_low"] <= gap["delta"]["value"] <= gap["delta"]["ci_high"]
    absent = [json.loads(x) for x in (out / "motionbench" / "records.key_absent.jsonl").read_text().splitlines()]
    full = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    assert {r["sample_id"] for r in absent} == {r["sample_id"] for r in full}
    assert all(r["variant"] == "key_absent" for r in absent)
    assert any(r["key_frames"] for r in absent)
    assert all(0 <= k < len(r["frame_timestamps_s"]) for r in absent for k in r["key_frames"])
    assert {r["request_fingerprint"] for r in absent}.isdisjoint({r["request_fingerprint"] for r in full})


def test_perception_gap_refuses_replay_before_generating(world, tmp_path, capsys):
    root, data, _ = world
    preds = tmp_path / "p.jsonl"
    preds.write_text("")
    assert cli.main(["run", "--model", f"replay:{preds}", "--tasks", "motionbench", "--data-root", str(data),
                     "--output", str(tmp_path / "o"), "--perception-gap", "--allow-missing"]) == 2
    assert "needs a backend that sees frames" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_rescore_keeps_the_perception_gap(gap_run):
    out = gap_run
    before = json.loads((out / "motionbench" / "result.json").read_text())["perception_gap"]
    assert cli.main(["score", str(out)]) == 0
    after = json.loads((out / "motionbench" / "result.json").read_text())["perception_gap"]
    assert after == before
    assert json.loads((out / "results.json").read_text())["results"]["motionbench"]["perception_gap"] == before


def test_default_batching_is_byte_identical_to_one_at_a_time(world):
    """Issue 15: without --batch-size the hf backend batches greedy requests (8, left padding) in
    float32 on CPU; responses are byte-identical to --batch-size 1 and the manifest says why. The
    runs with batches prefetch (decode, patchify, tokenise on a worker); the batch-1 run does not:
    the records (timing aside) are identical."""
    root, _, model = world
    from vpbench.synth.motionbench import synth_motionbench

    synth_motionbench(root / "mb_batch", seed=5, n_videos=10)
    data = root / "mb_batch"
    import torch

    threads_before = torch.get_num_threads()
    runs = {}
    for name, extra in (("auto", []), ("four", ["--batch-size", "4"]), ("one", ["--batch-size", "1", "--no-prefetch"])):
        out = root / f"batch_{name}"
        assert cli.main(["run", "--model", str(model), "--tasks", "motionbench", "--data-root", str(data),
                         "--output", str(out), "--device", "cpu", "--no-cache", *extra,
                         "--set", "protocol.max_new_tokens=6"]) == 0
        records = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
        full = [{k: v for k, v in r.items() if k != "timing"} for r in records]
        runs[name] = ({r["sample_id"]: r["response"] for r in records},
                      json.loads((out / "manifest.json").read_text())["model"], full)
    (auto, m_auto, r_auto), (one, m_one, r_one) = runs["auto"], runs["one"]
    assert len(auto) > 12 and auto == one  # more than one batch of 8, every response the same bytes
    assert r_auto == r_one == runs["four"][2]  # whole records too (4 batches of 4: prefetched and prepared ahead)
    assert len(set(auto.values())) > 1  # the responses differ between samples (not a constant)
    assert m_auto["batch_size"] == 8 and "byte-identical" in m_auto["batch_size_reason"]
    assert m_one["batch_size"] == 1 and "--batch-size" in m_one["batch_size_reason"]
    # generate ran with the default intra-op threads (1 unless OMP_NUM_THREADS) and restored torch's own
    assert m_auto["torch_threads"] == (None if os.environ.get("OMP_NUM_THREADS") else 1)
    assert torch.get_num_threads() == threads_before


def test_default_batch_size_falls_back_to_one_where_not_proven_exact():
    from vpbench.models.hf_qwen_vl import auto_batch_size

    assert auto_batch_size(None, "cpu", "float32")[0] == 8
    size, why = auto_batch_size(None, "cuda:0", "bfloat16")
    assert size == 1 and "bfloat16 on cuda:0" in why and "--batch-size" in why
    assert auto_batch_size(None, "cpu", "bfloat16")[0] == 1
    assert auto_batch_size(4, "cuda", "bfloat16") == (4, auto_batch_size(4, "cpu", "float32")[1])


def test_cpu_threads_default_is_one_unless_omp_num_threads_is_set(monkeypatch):
    from vpbench.models.hf_qwen_vl import cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads()[0] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    n, why = cpu_threads()
    assert n is None and "OMP_NUM_THREADS=3" in why
