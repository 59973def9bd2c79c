"""Streaming records (issue 15): records are read line by line and aggregated from compact
records (shared equal values, no timing/frame timestamps); the numbers are those of the full
records, and a 10,000-sample replay's peak memory stays close to a 1,000-sample one's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.engine.records import RecordStore, ValuePool
from vpbench.engine.runner import summarize
from vpbench.registry import get_task
from vpbench.results import task_result_to_dict
from vpbench.task import StatsOptions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from replay_scale import write_data  # noqa: E402


def test_value_pool_shares_equal_values_of_the_same_types_only():
    pool = ValuePool()
    a = {"acc": 1.0}
    assert pool.share(a) is a and pool.share({"acc": 1.0}) is a
    one, true = {"acc": 1}, {"acc": True}  # equal to 1.0 in Python, encoded differently in JSON
    assert pool.share(one) is one and pool.share(true) is true
    zero = pool.share({"d": 0.0})
    assert pool.share({"d": -0.0}) is not zero
    opts = pool.share(["A. x", "B. y"])
    assert opts == ("A. x", "B. y") and pool.share(("A. x", "B. y")) is opts
    nested = {"l": [1, 2]}
    assert pool.share(nested) is nested  # unhashable parts: kept as they are
    long = "x" * 65
    assert pool.share(long) is long


def test_compact_records_aggregate_exactly_like_full_records(tmp_path):
    replay = write_data(tmp_path / "mb", 240)
    out = tmp_path / "run"
    assert cli.main(["run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root",
                     str(tmp_path / "mb"), "--output", str(out), "--no-cache", "--set", "stats.n_boot=200"]) == 0
    store = RecordStore(out / "motionbench" / "records.jsonl")
    full, compact = store.load(repair=False), store.load(repair=False, compact=True)
    assert list(full) == list(compact) and len(full) == 240
    for sid, r in full.items():
        c = compact[sid]
        assert (c.sample_id, c.answer, c.cluster, dict(c.groups), c.options, dict(c.meta), c.response, c.parsed,
                c.parser, dict(c.scores), c.error, c.request_fingerprint, c.protocol_fingerprint) == (
            r.sample_id, r.answer, r.cluster, dict(r.groups), r.options, dict(r.meta), r.response, r.parsed,
            r.parser, dict(r.scores), r.error, r.request_fingerprint, r.protocol_fingerprint)
        assert r.timing and not c.timing and not c.frame_timestamps_s
    recs = list(compact.values())
    assert recs[0].groups is recs[12].groups or dict(recs[0].groups) != dict(recs[12].groups)
    # the run aggregated compact records: its result equals summarize() over the full records
    written = json.loads((out / "motionbench" / "result.json").read_text())
    task = get_task("motionbench")
    stats = StatsOptions(n_boot=200)
    proto = task.resolve_protocol(None, {})
    res = summarize(task, list(full.values()), proto, stats, n_total=240,
                    sample_set=written["sample_set_hash"], partial=False, excluded=0)
    expect = json.loads(json.dumps(task_result_to_dict(res)))
    assert written["metrics"] == expect["metrics"] and written["by_group"] == expect["by_group"]
    assert written["counts"] == expect["counts"]
    assert any(m["ci_low"] is not None for m in written["metrics"])


def test_loader_reads_line_by_line_and_keeps_torn_line_rules(tmp_path):
    replay = write_data(tmp_path / "mb", 8)
    out = tmp_path / "run"
    assert cli.main(["run", "--model", f"replay:{replay}", "--tasks", "motionbench", "--data-root",
                     str(tmp_path / "mb"), "--output", str(out), "--no-cache"]) == 0
    path = out / "motionbench" / "records.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"sample_id": "q9", "resp')  # killed mid-write
    store = RecordStore(path)
    assert len(store.load(compact=True)) == 8 and store.dropped_partial_line
    assert path.read_bytes() == good  # truncated back to the last whole record
    lines = good.split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"{not json", *lines[1:]]))
    from vpbench.errors import DataError

    with pytest.raises(DataError, match=r"records\.jsonl:2: corrupt record line"):
        RecordStore(path).load()


def _peak_rss_mib(tmp_path: Path, n: int) -> float:
    replay = write_data(tmp_path / f"mb{n}", n)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import resource, sys; from vpbench import cli; rc = cli.main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "run", "--model", f"replay:{replay}", "--tasks", "motionbench",
                        "--data-root", str(tmp_path / f"mb{n}"), "--output", str(tmp_path / f"o{n}"), "--no-cache"],
                       env=env, capture_output=True, text=True, check=True)
    return int(p.stdout.strip().splitlines()[-1]) / 1024


@pytest.mark.slow
def test_peak_rss_of_10k_replay_stays_near_1k(tmp_path):
    """Regression guard: 1.39x on 2026-11-30 (was 2.26x); the issue's goal is 1.1x (not met, see
    benchmarks/README.md)."""
    small, large = _peak_rss_mib(tmp_path, 1000), _peak_rss_mib(tmp_path, 10000)
    assert large / small <= 1.5, (small, large)
