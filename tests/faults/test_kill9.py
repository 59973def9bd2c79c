"""Crash safety (slow): ``kill -9`` at 24 seeded points of a run, then resume; and two real
``vpbench run`` processes into one directory.

Each point is (where, n): the n-th occurrence of a plan / backend call / cache write / record
append / half-written record line / atomic file replace (see killhook.py). After the kill the
same command is re-run; records, per-task results and run results must equal an uninterrupted
run's, with one record line per sample and no finished sample generated again (the resume
generates or takes from the cache exactly the samples without a complete record).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from faultkit import assert_ok, manifest, run_cli, sample_ids, write_replay

HERE = Path(__file__).parent
SEEDS = range(24)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]), **extra}


def _child(argv: list[str], point: str, n: int, counts: Path | None = None) -> subprocess.CompletedProcess:
    code = ("import sys, killhook; killhook.arm(%r, %d); from vpbench.cli import main; sys.exit(main(%r))"
            % (point, n, [str(a) for a in argv]))
    env = _env(KILLHOOK_COUNTS=str(counts)) if counts else _env()
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "timing"}


def _snapshot(out: Path) -> dict:
    recs = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().split("\n") if x.strip()]
    results = json.loads((out / "results.json").read_text())
    return {"records": sorted((_strip(r) for r in recs), key=lambda r: r["sample_id"]),
            "n_lines": len(recs),
            "result": json.loads((out / "motionbench" / "result.json").read_text()),
            "results": results["results"], "derived": results.get("derived")}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vpbench.registry import get_task

    base = tmp_path_factory.mktemp("kill9")
    root = base / "mb"
    get_task("motionbench").synth(root, 0)
    ids = sample_ids(root)
    replay = write_replay(base / "replay.jsonl", {s: "ABCDE"[i % 5] for i, s in enumerate(ids)})
    argv = lambda out: ["run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root", str(root),  # noqa: E731
                        "--output", str(out)]
    ref_out = base / "reference"
    counts = base / "counts.json"
    proc = _child(argv(ref_out), "count", 0, counts)
    assert proc.returncode == 0, proc.stderr
    return {"argv": argv, "reference": _snapshot(ref_out), "counts": json.loads(counts.read_text()),
            "ids": ids, "base": base}


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_kill9_then_resume_is_identical(seed: int, setup, capsys) -> None:
    from killhook import POINTS

    rng = random.Random(seed)
    point = POINTS[seed % len(POINTS)]  # every kind of point, at a seeded occurrence
    n = rng.randint(1, setup["counts"][point])
    out = setup["base"] / f"seed{seed}"
    killed = _child(setup["argv"](out), point, n)
    assert killed.returncode == -9, f"{point}#{n} did not kill: {killed.stderr}"
    path = out / "motionbench" / "records.jsonl"
    complete = 0
    if path.exists():
        for line in path.read_bytes().split(b"\n"):
            try:
                complete += isinstance(json.loads(line), dict)
            except ValueError:
                pass  # blank, or the torn half line
    o = run_cli(capsys, *setup["argv"](out))
    assert_ok(o)
    snap = _snapshot(out)
    assert snap == setup["reference"], f"{point}#{n}: resumed run differs from the uninterrupted one"
    assert snap["n_lines"] == len(setup["ids"])
    last = manifest(out)["tasks"]["motionbench"]["invocations"][-1]
    # the resume generated (or took from the cache) exactly the samples without a complete record
    assert last["n_generated"] + last["cache_hits"] == len(setup["ids"]) - complete, last
    assert last["n_resumed"] == complete


@pytest.mark.slow
def test_two_concurrent_runs_into_one_dir(setup) -> None:
    out = setup["base"] / "concurrent"
    argv = [sys.executable, "-m", "vpbench", *setup["argv"](out)]
    procs = [subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:  # overlapped: the second was refused, naming the holder
        refused = next(err for rc, err in results if rc == 2)
        assert "is in use by another vpbench run" in refused and "Traceback" not in refused
    snap = _snapshot(out)
    assert snap["n_lines"] == len(setup["ids"])  # one line per sample, never two
    assert snap["records"] == setup["reference"]["records"]
