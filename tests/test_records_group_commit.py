"""Group commit of ``records.jsonl``: the same bytes as one fsynced append per record, fewer fsyncs,
and the crash guarantee kept — a run SIGKILLed at any point of a commit loses at most the batch in
flight, and resuming it yields exactly the records of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import write_motionbench
from vpbench.api import RunConfig, evaluate
from vpbench.engine.records import RecordStore, RecordWriter
from vpbench.models.dummy import DummyBackend
from vpbench.types import Record

ROOT = Path(__file__).resolve().parents[1]
N_SAMPLES, BATCH = 22, 4  # 6 batches, the last one short


def _rows(n: int) -> list[dict]:
    rows = []
    for v in range(0, n, 2):
        qa = [{"uid": f"q{q:02d}", "start": None, "end": None, "answer": "ABC"[q % 3],
               "question": f"Which way does object {q} move?\nA. left\nB. right\nC. up"} for q in range(v, min(n, v + 2))]
        rows.append({"question_type": "Camera Motion", "video_type": "Synthetic", "key": f"vid{v}", "qa": qa,
                     "video_path": f"vid{v}.mp4", "video_info": {"duration": 2.0, "fps": 10.0}})
    return rows


def _record(i: int) -> Record:
    return Record(sample_id=f"s{i}", task="t", cluster=f"c{i // 2}", groups={"g": "x"}, answer="A",
                  options=("A. é", "B. \"q\""), meta={"n": [i, {"z": None}]}, request_fingerprint="rf",
                  protocol_fingerprint="pf", frame_timestamps_s=(0.0, 0.5), response=f"A{i}\n", parsed="A",
                  parser="official@1", scores={"acc": 1.0}, timing={"decode_s": 0.01}, key_frames=(1,))


def test_group_commit_writes_the_bytes_of_per_record_appends_with_fewer_fsyncs(tmp_path, monkeypatch):
    import dataclasses

    records = [_record(i) for i in range(10)]
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    one_by_one = RecordStore(tmp_path / "a.jsonl")
    for r in records:
        one_by_one.append(r)  # the former path: one write + fsync per record
    assert len(synced) == 10
    synced.clear()
    with RecordWriter(tmp_path / "b.jsonl", fsync_interval_s=3600) as w:
        w.commit(records[:4])
        w.commit([])
        w.commit(records[4:])
        assert w.n_written == 10 and synced == []  # nothing fsynced inside the interval...
    assert len(synced) == 1  # ...and once on close
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    # the line format is the one records always had: asdict, sorted keys, non-ASCII kept
    want = "".join(json.dumps(dataclasses.asdict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    assert (tmp_path / "b.jsonl").read_text(encoding="utf-8") == want
    assert list(RecordStore(tmp_path / "b.jsonl").load().values()) == records
    with RecordWriter(tmp_path / "c.jsonl", fsync_interval_s=0) as w:
        synced.clear()
        w.commit(records[:2])
        w.commit(records[2:3])
        assert len(synced) == 2  # interval 0: fsync per batch
    with pytest.raises(ValueError, match="closed"):
        w.commit(records[:1])


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import vpbench.api as api
    from vpbench.engine import records as R
    from vpbench.models.dummy import DummyBackend

    where, at = sys.argv[1], int(sys.argv[2])
    real_commit = R.RecordWriter.commit
    calls = {"n": 0}

    def commit(self, recs):
        recs = list(recs)
        k, calls["n"] = calls["n"], calls["n"] + 1
        if k == at and where == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        if k == at and where == "mid_write":  # a torn batch: half its bytes reach the file
            data = "".join(R.record_to_json(r) + "\\n" for r in recs).encode()
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_commit(self, recs)
        if k == at and where == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    R.RecordWriter.commit = commit
    api.load_backend = lambda spec, opts: DummyBackend("random", seed=3, batch_size=%d)
    api.evaluate(api.RunConfig(model="dummy:random:3", tasks=("motionbench",), output=Path(sys.argv[3]),
                               data_roots={"motionbench": Path(sys.argv[4])}, cache=False), echo=lambda s: None)
""" % BATCH)


class _Counting(DummyBackend):
    def __init__(self) -> None:
        super().__init__("random", seed=3, batch_size=BATCH)
        self.calls: list[str] = []

    def generate(self, batch):
        self.calls.extend(p.request.sample_id for p in batch)
        return super().generate(batch)


def _run(out: Path, data: Path, monkeypatch) -> _Counting:
    import vpbench.api as api

    backend = _Counting()
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: backend)
    evaluate(RunConfig(model="dummy:random:3", tasks=("motionbench",), output=out,
                       data_roots={"motionbench": data}, cache=False), echo=lambda s: None)
    return backend


def _lines_without_timing(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for r in rows:
        r.pop("timing")
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The generated data and an uninterrupted run over it."""
    tmp = tmp_path_factory.mktemp("group_commit")
    data = write_motionbench(tmp / "mb", _rows(N_SAMPLES))
    with pytest.MonkeyPatch.context() as mp:
        _run(tmp / "ref", data, mp)
    return data, tmp / "ref"


# before the 4th commit / halfway through writing the 3rd / after the last commit, before close's fsync
@pytest.mark.parametrize("where,at,min_kept", [("before", 3, 3 * BATCH), ("mid_write", 2, 2 * BATCH),
                                               ("after", 5, N_SAMPLES)])
def test_kill_at_any_commit_point_loses_at_most_the_batch_in_flight(tmp_path, monkeypatch, reference, where, at,
                                                                     min_kept):
    data, ref = reference
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, where, str(at), str(out), str(data)], env=env,
                          cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    path = out / "motionbench" / "records.jsonl"
    raw = path.read_bytes() if path.exists() else b""
    kept = RecordStore(path).load()
    assert len(kept) >= min_kept  # every batch committed before the kill survived
    assert len(kept) <= min_kept + (BATCH if where == "mid_write" else 0)
    if where == "mid_write":
        assert not raw.endswith(b"\n")  # the kill tore a line, and loading dropped it
    resumed = _run(out, data, monkeypatch)
    assert sorted(resumed.calls) == sorted(set(f"q{q:02d}" for q in range(N_SAMPLES)) - set(kept))
    assert _lines_without_timing(path) == _lines_without_timing(ref / "motionbench" / "records.jsonl")
