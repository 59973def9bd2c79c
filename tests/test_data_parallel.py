"""Data-parallel evaluation: sharding by a stable hash of the sample id, per-rank record files,
merge + score once on rank 0, resume at any world size.

The torchrun tests are real multi-process runs (gloo) through ``vpbench run --nproc N``; the
``counting`` backend (tests/dp_helpers.py) logs every generated sample id and can die like a kill -9.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.engine import shard
from vpbench.engine.launch import strip_nproc, torchrun_command
from vpbench.engine.shard import DistContext, shard_of
from vpbench.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
N_VIDEOS, N_QA = 8, 3  # 24 questions, 8 clusters


def _write_data(root: Path) -> Path:
    rows = []
    for v in range(N_VIDEOS):
        qa = [{"uid": f"v{v}q{q}", "start": None, "end": None, "answer": "ABC"[(v + q) % 3],
               "question": f"Which light flashes in clip {v}, question {q}?\nA. red\nB. green\nC. blue"}
              for q in range(N_QA)]
        rows.append({"question_type": ["Repetition Count", "Camera Motion", "Action Order"][v % 3],
                     "video_type": "Synthetic", "key": f"vid{v}", "qa": qa, "video_path": f"vid{v}.mp4",
                     "video_info": {"duration": 2.0, "fps": 10.0, "resolution": {"width": 64, "height": 64}}})
    root.mkdir(parents=True, exist_ok=True)
    (root / "video_info.meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _env(genlog: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update({"VPBENCH_BACKENDS": "counting=tests.dp_helpers:counting", "VPBENCH_TEST_GENLOG": str(genlog),
                "PYTHONPATH": f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}", "CI": "true",
                "OMP_NUM_THREADS": "1", **extra})
    return env


def _args(data: Path, out: Path, nproc: int) -> list[str]:
    return ["run", "--model", "counting:x", "--tasks", "motionbench", "--data-root", str(data),
            "--output", str(out), "--no-cache", "--nproc", str(nproc)]


def _run(data: Path, out: Path, nproc: int, genlog: Path, **extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vpbench", *_args(data, out, nproc)]
    return subprocess.run(cmd, cwd=ROOT, env=_env(genlog, **extra), capture_output=True, text=True, timeout=300)


def _records(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("timing")
    return rows


def _metrics(out: Path) -> dict:
    res = json.loads((out / "results.json").read_text())["results"]["motionbench"]
    return {"metrics": res["metrics"], "by_group": res["by_group"], "counts": res["counts"]}


def _generated(genlog: Path) -> collections.Counter:
    return collections.Counter(line.split()[1] for line in genlog.read_text().splitlines())


def test_shard_of_is_a_stable_hash_partition():
    ids = [f"s{i}" for i in range(300)]
    by_hand = int.from_bytes(hashlib.sha256(b"s0").digest()[:8], "big")
    assert [shard_of("s0", w) for w in (1, 2, 3, 7)] == [by_hand % w for w in (1, 2, 3, 7)]
    for world in (1, 2, 3):
        ranks = [DistContext(r, world) for r in range(world)]
        owners = [[r.rank for r in ranks if r.owns(i)] for i in ids]
        assert all(len(o) == 1 for o in owners)  # every sample exactly once
        counts = collections.Counter(o[0] for o in owners)
        assert min(counts.values()) > 300 / world * 0.75  # and roughly balanced


def test_dist_context_from_env_and_devices(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    d = DistContext.from_env()
    assert (d.rank, d.world_size, d.local_rank, d.is_main) == (3, 4, 1, False)
    assert d.record_file("records.jsonl") == "records.rank3.jsonl"
    assert d.record_file("records.key_absent.jsonl") == "records.key_absent.rank3.jsonl"
    assert d.device("cpu") == "cpu" and d.device("cuda:5") == "cuda:5"
    import torch

    assert d.device("auto") == ("cuda:1" if torch.cuda.is_available() else "cpu")
    assert DistContext().device("auto") == "auto"  # one process: the backend decides
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="need 0 <= RANK < WORLD_SIZE"):
        DistContext.from_env()


def test_rank_files_sorted_by_rank(tmp_path):
    for name in ("records.rank10.jsonl", "records.rank2.jsonl", "records.key_absent.rank0.jsonl",
                 "records.jsonl", "records.rankx.jsonl"):
        (tmp_path / name).write_text("")
    assert [p.name for p in shard.rank_files(tmp_path, "records.jsonl")] == ["records.rank2.jsonl",
                                                                              "records.rank10.jsonl"]
    assert [p.name for p in shard.rank_files(tmp_path, "records.key_absent.jsonl")] == [
        "records.key_absent.rank0.jsonl"]


def test_torchrun_command_and_nproc_inside_a_launch(monkeypatch):
    cmd = torchrun_command(3, ["run", "--nproc", "3", "--model", "m", "--nproc=3", "--tasks", "t"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3", "-m", "vpbench",
                       "run", "--model", "m", "--tasks", "t"]
    assert strip_nproc(["--nprocs", "2"]) == ["--nprocs", "2"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(["run", "--model", "dummy:first", "--tasks", "motionbench", "--output", "x",
                     "--nproc", "2", "--data-root", "x"]) == 2


def _reference(data: Path, out: Path, genlog: Path) -> Path:
    """The one-process run (in-process CLI)."""
    os.environ.update({"VPBENCH_BACKENDS": "counting=tests.dp_helpers:counting", "VPBENCH_TEST_GENLOG": str(genlog)})
    try:
        assert cli.main(_args(data, out, 1)) == 0
    finally:
        os.environ.pop("VPBENCH_BACKENDS")
        os.environ.pop("VPBENCH_TEST_GENLOG")
    return out


def _kill_on_two(data: Path, killed: Path, log: Path) -> None:
    """A 2-rank run where each rank dies (kill -9 style) when asked for its 4th sample: 8 of 24 done."""
    p = _run(data, killed, 2, log, VPBENCH_TEST_DIE_AFTER="4")
    assert p.returncode != 0
    assert sum(_generated(log).values()) == 8
    assert {f.name for f in (killed / "motionbench").glob("records*.jsonl")} == {
        "records.rank0.jsonl", "records.rank1.jsonl"}


def _all_once() -> collections.Counter:
    return collections.Counter({f"v{v}q{q}": 1 for v in range(N_VIDEOS) for q in range(N_QA)})


def test_two_process_gloo_run_equals_one_process(tmp_path):
    """Done-when: a 2-process gloo run gives records and metrics identical to a 1-process run."""
    data = _write_data(tmp_path / "mb")
    one = _reference(data, tmp_path / "one", tmp_path / "gen1.log")
    p = _run(data, tmp_path / "two", 2, tmp_path / "gen2.log")
    assert p.returncode == 0, p.stderr[-3000:]
    assert _records(tmp_path / "two") == _records(one)
    assert _metrics(tmp_path / "two") == _metrics(one)
    assert not list((tmp_path / "two" / "motionbench").glob("records.rank*"))  # merged, rank files gone
    by_rank = collections.Counter(line.split()[0] for line in (tmp_path / "gen2.log").read_text().splitlines())
    assert set(by_rank) == {"0", "1"}  # both ranks worked ...
    assert _generated(tmp_path / "gen2.log") == _all_once()  # ... and no sample was generated twice
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["tasks"]["motionbench"]["n_generated"] == 24


def test_killed_on_two_ranks_resumes_on_one(tmp_path):
    """Done-when: a run killed on 2 ranks resumes on 1 with no sample generated twice (counted)."""
    data = _write_data(tmp_path / "mb")
    one = _reference(data, tmp_path / "one", tmp_path / "gen1.log")
    killed, log = tmp_path / "killed", tmp_path / "kill.log"
    _kill_on_two(data, killed, log)
    assert _run(data, killed, 1, log).returncode == 0
    assert _generated(log) == _all_once()
    assert _records(killed) == _records(one) and _metrics(killed) == _metrics(one)
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["tasks"]["motionbench"]["n_resumed"] == 8 and manifest["tasks"]["motionbench"]["n_generated"] == 16
    assert not list((killed / "motionbench").glob("records.rank*"))


@pytest.mark.slow
def test_killed_on_two_ranks_resumes_on_three(tmp_path):
    """Done-when: a run killed on 2 ranks resumes on 3 with no sample generated twice (counted)."""
    data = _write_data(tmp_path / "mb")
    one = _reference(data, tmp_path / "one", tmp_path / "gen1.log")
    killed, log = tmp_path / "killed", tmp_path / "kill.log"
    _kill_on_two(data, killed, log)
    p = _run(data, killed, 3, log)
    assert p.returncode == 0, p.stderr[-3000:]
    assert _generated(log) == _all_once()
    by_rank = collections.Counter(line.split()[0] for line in log.read_text().splitlines()[8:])
    assert set(by_rank) == {"0", "1", "2"}
    assert _records(killed) == _records(one) and _metrics(killed) == _metrics(one)


def test_score_refuses_an_unfinished_data_parallel_run(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "motionbench").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"tasks": {"motionbench": {"parser": "official", "protocol": {}}}}))
    (run / "motionbench" / "records.rank1.jsonl").write_text("")
    assert cli.main(["score", str(run)]) == 2
    assert "re-run the same `vpbench run` command (any --nproc) to finish" in capsys.readouterr().err


@pytest.mark.slow
def test_two_ranks_on_the_hf_backend_equal_one(tmp_path):
    """The real hf backend with frames (tiny Qwen2.5-VL, CPU): 2 gloo ranks ≡ 1 process, record for record."""
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench

    synth_motionbench(tmp_path / "mb", seed=3, n_videos=4)
    model = build_tiny_qwen(tmp_path / "tiny", seed=0)
    for n in (1, 2):
        cmd = [sys.executable, "-m", "vpbench", "run", "--model", str(model), "--tasks", "motionbench",
               "--data-root", str(tmp_path / "mb"), "--output", str(tmp_path / f"n{n}"), "--device", "cpu",
               "--no-cache", "--nproc", str(n), "--set", "protocol.max_new_tokens=4"]
        p = subprocess.run(cmd, cwd=ROOT, env=_env(tmp_path / "unused.log"), capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
    assert _records(tmp_path / "n2") == _records(tmp_path / "n1")
    assert _metrics(tmp_path / "n2") == _metrics(tmp_path / "n1")
    assert all(r["frame_timestamps_s"] for r in _records(tmp_path / "n2"))
