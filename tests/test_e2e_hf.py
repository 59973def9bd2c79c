"""End to end through the real `hf` backend: generated MotionBench data in its native format, a tiny
random Qwen2.5-VL checkpoint, the CLI — and the perception-gap pass on the same run."""

from __future__ import annotations

import json
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
