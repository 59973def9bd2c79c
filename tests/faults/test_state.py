"""Faults that used to give a silently wrong or stale result, or a traceback deep in a run:
corrected annotations, cumulative counters, cached frame timestamps, the run lock, the response
cache, all-task preflight, per-cause fixes, missing extras, devices and internal errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from faultkit import assert_ok, assert_refused, edit_qa, manifest, records, run_cli, sample_ids, write_replay


def _run(root: Path, out: Path, replay: Path, *extra) -> list:
    return ["run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root", root, "--output", out,
            *extra]


@pytest.fixture
def replay(motionbench_root: Path, tmp_path: Path) -> Path:
    return write_replay(tmp_path / "replay.jsonl", {s: "A" for s in sample_ids(motionbench_root)})


def _acc(out: Path) -> dict[str, float]:
    return {r["sample_id"]: r["scores"].get("acc") for r in records(out)}


@pytest.mark.parametrize("how", ["resume", "score"])
def test_corrected_answer_rescores_without_regenerating(how: str, motionbench_root: Path, replay: Path,
                                                        tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))
    assert _acc(out)["qa1"] == 0.0  # replay says A, the annotation B
    old_hash = manifest(out)["tasks"]["motionbench"]["sample_set_hash"]
    edit_qa(motionbench_root, lambda q: q.update(answer="A"))  # the annotation is corrected
    argv = _run(motionbench_root, out, replay) if how == "resume" else ["score", out]
    assert_ok(run_cli(capsys, *argv))
    assert _acc(out)["qa1"] == 1.0
    assert [r["answer"] for r in records(out) if r["sample_id"] == "qa1"] == ["A"]
    m = manifest(out)["tasks"]["motionbench"]
    assert m["sample_set_hash"] != old_hash
    assert m["n_generated"] == 5  # nothing was generated again
    result = json.loads((out / "motionbench" / "result.json").read_text())
    dev = {x["name"]: x["value"] for x in result["metrics"]}
    assert dev["Dev-AVG"] == pytest.approx(3 / 4)  # qa1, qa2_1, qa4 answer A; qa3 is C; qa5 is hidden


def test_changed_option_text_changes_the_request_and_is_refused(motionbench_root: Path, replay: Path,
                                                                 tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))
    edit_qa(motionbench_root, lambda q: q.update(question=q["question"].replace("C. 3", "C. three")))
    assert_refused(run_cli(capsys, *_run(motionbench_root, out, replay)),
                   "1 records were made under a different prompt/protocol", "qa1", "new --output")


def test_counters_are_cumulative_with_history(motionbench_root: Path, replay: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay, "--limit", "2")))
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))
    m = manifest(out)
    t = m["tasks"]["motionbench"]
    assert [h["n_generated"] for h in t["invocations"]] == [2, 3, 0]
    assert [h["n_resumed"] for h in t["invocations"]] == [0, 2, 5]
    assert [h["cache_misses"] for h in t["invocations"]] == [2, 3, 0]
    assert t["n_generated"] == 5 and t["n_resumed"] == 7 and t["cache_misses"] == 5
    assert m["cache"] == {"hits": 0, "misses": 5}
    assert t["coverage"] == 1.0 and t["partial"] is False


def test_torn_line_message_and_resume(motionbench_root: Path, replay: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))
    path = out / "motionbench" / "records.jsonl"
    good = path.read_bytes()
    path.write_bytes(good[: good.rstrip(b"\n").rfind(b"\n") + 40])  # last line torn mid-write
    o = run_cli(capsys, *_run(motionbench_root, out, replay))
    assert_ok(o)
    assert "dropped a torn last line" in o.err and "served from the response cache" in o.err
    assert path.read_bytes() == good


def test_frame_timestamps_survive_the_response_cache(motionbench_with_videos: Path, tmp_path: Path,
                                                     monkeypatch, capsys) -> None:
    import vpbench.api
    from vpbench.models.dummy import DummyBackend

    monkeypatch.setattr(vpbench.api, "load_backend", lambda spec, opts: DummyBackend("first", needs_frames=True))
    cache = tmp_path / "shared.sqlite"
    base = ["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", motionbench_with_videos,
            "--cache-path", cache, "--set", "protocol.fps=null", "--set", "protocol.nframes=4"]
    assert_ok(run_cli(capsys, *base, "--output", tmp_path / "a"))
    assert_ok(run_cli(capsys, *base, "--output", tmp_path / "b"))  # every response served from the cache
    a, b = records(tmp_path / "a"), records(tmp_path / "b")
    assert manifest(tmp_path / "b")["cache"] == {"hits": 5, "misses": 0}
    assert [r["frame_timestamps_s"] for r in b] == [r["frame_timestamps_s"] for r in a]
    assert a[0]["frame_timestamps_s"] == [0.0, 0.6, 1.3, 1.9]  # frames 0, 6, 13, 19 of 20 at 10 fps


def test_second_run_into_a_locked_dir_is_refused(motionbench_root: Path, replay: Path, tmp_path: Path,
                                                  capsys) -> None:
    out = tmp_path / "out"
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay, "--limit", "2")))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from vpbench.engine.rundir import RunLock
            with RunLock({str(out)!r}, ["vpbench", "run", "--holder"]):
                print("locked", flush=True)
                sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        o = run_cli(capsys, *_run(motionbench_root, out, replay))
        assert_refused(o, "is in use by another vpbench run", f"pid {holder.pid}", "--holder", "another --output")
        assert len(records(out)) == 2  # nothing generated or appended
        assert_refused(run_cli(capsys, "score", out), "is in use by another vpbench run")  # nor re-scored
    finally:
        holder.communicate("\n", timeout=60)
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))  # released when the holder ends


def test_lock_left_by_a_killed_run_does_not_block(motionbench_root: Path, replay: Path, tmp_path: Path,
                                                  capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".vpbench.lock").write_text('{"pid": 999999, "argv": ["vpbench"]}')  # no process holds it
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay)))


def test_all_tasks_are_preflighted_before_any_generation(motionbench_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    o = run_cli(capsys, "run", "--model", "dummy:first", "--tasks", "motionbench,vsibench",
                "--data-root", f"motionbench={motionbench_root}", "--data-root", f"vsibench={tmp_path / 'none'}",
                "--output", out)
    assert_refused(o, "vsibench: data root", "does not exist")
    assert not (out / "motionbench" / "records.jsonl").exists()


def test_corrupt_cache_entry_is_a_miss(motionbench_root: Path, replay: Path, tmp_path: Path, capsys) -> None:
    import sqlite3

    out = tmp_path / "out"
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay, "--limit", "1")))
    db = sqlite3.connect(out / "response_cache.sqlite")
    db.execute("UPDATE responses SET response = '{not json'")
    db.commit()
    db.close()
    (out / "motionbench" / "records.jsonl").unlink()
    assert_ok(run_cli(capsys, *_run(motionbench_root, out, replay, "--limit", "1")))
    assert [r["response"] for r in records(out)] == ["A"]
    assert manifest(out)["tasks"]["motionbench"]["invocations"][-1]["cache_misses"] == 1


def test_missing_captions_extra_is_refused_before_generation(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "rouge_score", None)  # import rouge_score now fails: not installed
    o = run_cli(capsys, "run", "--model", "dummy:first", "--tasks", "vru_accident_caption",
                "--data-root", tmp_path, "--output", tmp_path / "out")
    assert_refused(o, "needs the Python module 'rouge_score'", "[captions]")
    assert not (tmp_path / "out" / "vru_accident_caption").exists()


def test_cuda_device_without_cuda_is_refused_before_the_run_dir(tmp_path: Path, motionbench_root: Path,
                                                                capsys) -> None:
    import torch

    if torch.cuda.is_available():  # the refusal is for CPU-only torch; on a GPU the device is valid
        pytest.xfail("CUDA is available here")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    o = run_cli(capsys, "run", "--model", ckpt, "--tasks", "motionbench", "--data-root", motionbench_root,
                "--output", tmp_path / "out", "--device", "cuda")
    assert_refused(o, "--device cuda", "sees no CUDA device", "--device cpu")
    assert not (tmp_path / "out").exists()


def test_bad_device_name(tmp_path: Path, motionbench_root: Path, capsys) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    o = run_cli(capsys, "run", "--model", ckpt, "--tasks", "motionbench", "--data-root", motionbench_root,
                "--output", tmp_path / "out", "--device", "gpu0")
    assert_refused(o, "--device must be auto, cpu, cuda or cuda:N, got 'gpu0'")


def test_internal_error_exits_4_without_a_traceback(motionbench_root: Path, replay: Path, tmp_path: Path,
                                                    monkeypatch, capsys) -> None:
    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("vpbench.api.summarize", boom)
    monkeypatch.setattr("vpbench.engine.runner.summarize", boom)
    o = run_cli(capsys, *_run(motionbench_root, tmp_path / "out", replay))
    assert_refused(o, "internal error (exit 4): RuntimeError: simulated bug", "This is a bug in vpbench", rc=4)
    trace = Path(o.err.split("The traceback is in ")[1].split(";")[0])
    assert "simulated bug" in trace.read_text() and "Traceback" in trace.read_text()
    assert len(records(tmp_path / "out")) == 5  # the records made before the bug are kept


def test_data_check_applies_the_protocol_and_matches_the_fix(motionbench_with_videos: Path, capsys) -> None:
    from conftest import write_clip

    root = motionbench_with_videos
    write_clip(root / "self-collected" / "vidA.mp4", n_frames=1)  # one frame: fewer than frame_factor (2)
    (root / "self-collected" / "vidB.mp4").write_bytes(b"\x00" * 4096)  # corrupt
    (root / "self-collected" / "vidC.mp4").unlink()  # missing
    o = run_cli(capsys, "data", "check", "motionbench", "--data-root", root)
    assert_refused(o, "vidA.mp4: too short", "Fix (too short)", "vidB.mp4: does not decode",
                   "Fix (does not decode)", "vidC.mp4: missing", "Fix (missing): place the videos")


def test_data_check_corrupt_only_does_not_say_place_the_videos(motionbench_with_videos: Path, capsys) -> None:
    (motionbench_with_videos / "self-collected" / "vidB.mp4").write_bytes(b"\x00" * 4096)
    o = run_cli(capsys, "data", "check", "motionbench", "--data-root", motionbench_with_videos)
    assert_refused(o, "Fix (does not decode)")
    assert "place the videos" not in o.err


def test_delta_knowledge_precondition_is_a_note(tmp_path: Path, capsys) -> None:
    from vpbench.registry import get_task

    get_task("videommmu").synth(tmp_path / "vm" / "videommmu", 0)
    o = run_cli(capsys, "run", "--model", "dummy:first", "--tasks", "videommmu,videommmu_adaptation_qonly",
                "--data-root", tmp_path / "vm", "--limit", "1", "--output", tmp_path / "out")
    assert_ok(o)
    assert "note: videommmu/Δknowledge not reported: Δknowledge needs Adaptation records" in o.out
