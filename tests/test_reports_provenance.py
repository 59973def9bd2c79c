"""Per-task provenance in a run dir: a second task run into the same dir keeps the first task's
argv/config/environment/stats; `vpbench score` re-scores each task with its own stats; a cross-task
metric (VideoMMMU Δknowledge) is recomputed from the inputs' last runs, never left stale."""

from __future__ import annotations

import json
from pathlib import Path

from vpbench import cli


def _run(out: Path, data: Path, tasks: str, *extra: str) -> None:
    assert cli.main(["run", "--model", "dummy:first", "--tasks", tasks, "--data-root", str(data),
                     "--output", str(out), "--no-cache", *extra]) == 0


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_score_rescores_each_task_with_its_own_stats(tmp_path):
    data = tmp_path / "data"
    assert cli.main(["synth", "videommmu", "--output", str(data / "videommmu")]) == 0
    out = tmp_path / "run"
    _run(out, data, "videommmu", "--set", "stats.n_boot=200", "--set", "stats.seed=1")
    _run(out, data, "videommmu_adaptation_qonly", "--set", "stats.n_boot=0")
    before = _results(out)
    m = json.loads((out / "manifest.json").read_text())
    assert m["tasks"]["videommmu"]["provenance"]["stats"]["n_boot"] == 200
    assert m["tasks"]["videommmu_adaptation_qonly"]["provenance"]["stats"]["n_boot"] == 0
    assert "stats.seed=1" in m["tasks"]["videommmu"]["provenance"]["argv"]
    assert m["tasks"]["videommmu_adaptation_qonly"]["provenance"]["config"]["tasks"] == ["videommmu_adaptation_qonly"]
    assert m["stats"]["n_boot"] == 0  # top level: the latest invocation
    assert cli.main(["score", str(out)]) == 0
    after = _results(out)
    for task in ("videommmu", "videommmu_adaptation_qonly"):
        assert after["results"][task]["metrics"] == before["results"][task]["metrics"], task
    assert before["results"]["videommmu"]["metrics"][0]["ci_low"] is not None      # n_boot=200
    assert before["results"]["videommmu_adaptation_qonly"]["metrics"][0]["ci_low"] is None  # n_boot=0


def test_delta_knowledge_follows_the_inputs_last_runs(tmp_path, capsys):
    data = tmp_path / "data"
    assert cli.main(["synth", "videommmu", "--output", str(data / "videommmu")]) == 0
    out = tmp_path / "run"
    _run(out, data, "videommmu,videommmu_adaptation_qonly")
    full = _results(out)["derived"]["videommmu/Δknowledge"]
    assert full["n"] == 4
    # re-running one input on another sample set: the old Δknowledge is stale and must go
    _run(out, data, "videommmu_adaptation_qonly", "--limit", "2")
    assert "videommmu/Δknowledge" not in _results(out)["derived"]
    assert "videommmu/Δknowledge" not in json.loads((out / "manifest.json").read_text())["derived"]
    assert "Δknowledge not reported" in capsys.readouterr().out
    # its last run matches again: recomputed from both tasks' records (videommmu did not run now)
    _run(out, data, "videommmu_adaptation_qonly")
    res = _results(out)
    assert res["derived"]["videommmu/Δknowledge"] == full
    inputs = json.loads((out / "manifest.json").read_text())["derived"]["videommmu/Δknowledge"]["inputs"]
    assert inputs["videommmu_adaptation_qonly"]["sample_set_hash"] == \
        res["manifest"]["tasks"]["videommmu_adaptation_qonly"]["sample_set_hash"]
    assert cli.main(["score", str(out)]) == 0
    assert _results(out)["derived"]["videommmu/Δknowledge"] == full
