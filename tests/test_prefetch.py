"""Prefetch (issue 15): the next batch is decoded/prepared on a worker thread while the model
generates; the records are those of the sequential loop, a failure surfaces with the sample id
after the previous batch was committed, and a resumed run finishes the rest."""

from __future__ import annotations

import json
import threading

import pytest

from vpbench import api
from vpbench.api import RunConfig, evaluate
from vpbench.engine import runner
from vpbench.models.base import Prepared
from vpbench.models.dummy import DummyBackend
from vpbench.types import Response


class FrameBackend(DummyBackend):
    """dummy:first that sees frames, answers from their content, records which thread prepared
    each sample, and runs 2 samples per batch."""

    def __init__(self) -> None:
        super().__init__("first", batch_size=2, needs_frames=True)
        self.prepared_on: dict[str, str] = {}
        self.generated: list[str] = []

    def prepare(self, prep: Prepared) -> Prepared:
        self.prepared_on[prep.request.sample_id] = threading.current_thread().name
        return prep

    def generate(self, batch):
        out = super().generate(batch)
        self.generated += [p.request.sample_id for p in batch]
        # the answer depends on the frames, so a frame mix-up between samples changes the records
        return [Response(r.sample_id, f"{r.text} {int(p.frames.array.mean())} {len(p.frames.timestamps_s)}")
                for r, p in zip(out, batch)]


def _records(out):
    rows = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("timing")
    return rows


def _cfg(root, out, prefetch):
    return RunConfig(model="dummy:first", tasks=("motionbench",), output=out, data_roots={"motionbench": root},
                     prefetch=prefetch, cache=False)


def test_records_identical_with_and_without_prefetch(tmp_path, motionbench_with_videos, monkeypatch):
    runs = {}
    for prefetch in (True, False):
        backend = FrameBackend()
        monkeypatch.setattr(api, "load_backend", lambda spec, opts, b=backend: b)
        evaluate(_cfg(motionbench_with_videos, tmp_path / f"p{prefetch}", prefetch), echo=lambda s: None)
        runs[prefetch] = (_records(tmp_path / f"p{prefetch}"), backend)
    (with_pf, b_on), (without, b_off) = runs[True], runs[False]
    assert with_pf == without and len(with_pf) == 5
    assert all(r["frame_timestamps_s"] for r in with_pf)
    # batches 2 and 3 were prepared on the worker; nothing is prepared on it without prefetch
    assert {n.startswith("vpbench-prefetch") for n in b_on.prepared_on.values()} == {True}
    assert len(b_on.prepared_on) == 3 and not b_off.prepared_on


def test_prefetch_failure_names_the_sample_after_committing_earlier_batches(tmp_path, motionbench_with_videos,
                                                                             monkeypatch):
    real = runner._frame_loader(None)
    bad_video = "vidB.mp4"  # sample qa3: the second batch, prepared on the worker

    def loader(path, *a, **k):
        if path.name == bad_video:
            raise RuntimeError("decoder exploded")
        return real(path, *a, **k)

    monkeypatch.setattr(runner, "_frame_loader", lambda cache_dir: loader)
    backend = FrameBackend()
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: backend)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="decoder exploded") as info:
        evaluate(_cfg(motionbench_with_videos, out, True), echo=lambda s: None)
    assert any("'qa3'" in n and "prefetch" in n for n in getattr(info.value, "__notes__", []))
    done = [r["sample_id"] for r in _records(out)]
    assert done == ["qa1", "qa2_1"]  # the first batch was committed before the raise
    # resumable: with a working decoder the run finishes only the rest
    monkeypatch.setattr(runner, "_frame_loader", lambda cache_dir: real)
    again = FrameBackend()
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: again)
    evaluate(_cfg(motionbench_with_videos, out, True), echo=lambda s: None)
    assert again.generated == ["qa3", "qa4", "qa5"]
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: FrameBackend())
    evaluate(_cfg(motionbench_with_videos, fresh, False), echo=lambda s: None)
    assert _records(out) == _records(fresh)
