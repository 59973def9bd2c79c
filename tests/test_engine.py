"""End-to-end runs through the engine and CLI: exact accuracy from a replay file, resume after a
crash without regenerating, preflight failures, strict flags/overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.api import RunConfig, evaluate
from vpbench.errors import ConfigError, MissingMedia, RunDirMismatch
from vpbench.models.base import Prepared
from vpbench.models.dummy import DummyBackend
from vpbench.types import Response


def _replay(tmp_path: Path, answers: dict[str, str]) -> Path:
    f = tmp_path / "preds.jsonl"
    f.write_text("".join(json.dumps({"sample_id": k, "response": v}) + "\n" for k, v in answers.items()))
    return f


ANSWERS = {"qa1": "B", "qa2_1": "(B) yes", "qa3": "The answer is C.", "qa4": "A. red", "qa5": "C"}
# by hand, official parser: qa1 B==B ✓, qa2_1 B!=A ✗, qa3 'T'!=C ✗, qa4 A ✓ → 2/4 dev correct; qa5 hidden.


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["results"]["motionbench"]


def test_replay_accuracy_exact_by_hand(tmp_path, motionbench_root):
    out = tmp_path / "run"
    rc = cli.main(["run", "--model", f"replay:{_replay(tmp_path, ANSWERS)}", "--tasks", "motionbench",
                   "--data-root", str(motionbench_root), "--output", str(out)])
    assert rc == 0
    res = _results(out)
    metrics = {m["name"]: m for m in res["metrics"]}
    assert metrics["Dev-AVG"]["value"] == 0.5
    assert metrics["Dev-AVG"]["n"] == 4 and metrics["Dev-AVG"]["n_clusters"] == 3
    assert metrics["answered_rate"]["value"] == 1.0
    cats = {m["name"]: m["value"] for m in res["by_group"]["question_type (dev)"]}
    assert cats == {"CM": 0.0, "AO": 1.0, "RC": 0.5}
    assert res["counts"]["n_scorable"] == 4 and res["counts"]["n_total"] == 5
    records = [json.loads(line) for line in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    assert {r["sample_id"]: r["parsed"] for r in records} == {
        "qa1": "B", "qa2_1": "B", "qa3": "T", "qa4": "A", "qa5": "C"}
    assert all(r["parser"].startswith("official@") for r in records)
    manifest = json.loads((out / "manifest.json").read_text())
    task_info = manifest["tasks"]["motionbench"]
    assert task_info["protocol"]["fps"] == 1.0 and task_info["protocol_fingerprint"]
    assert manifest["model"]["backend"] == "replay" and manifest["environment"]["vpbench"]


def test_rescore_with_another_parser_needs_no_model(tmp_path, motionbench_root):
    out = tmp_path / "run"
    cli.main(["run", "--model", f"replay:{_replay(tmp_path, ANSWERS)}", "--tasks", "motionbench",
              "--data-root", str(motionbench_root), "--output", str(out)])
    assert cli.main(["score", str(out), "--parser", "lmms_eval"]) == 0
    # lmms-eval parser: qa3 'The answer is C.' → C ✓ → 3/4
    assert {m["name"]: m["value"] for m in _results(out)["metrics"]}["Dev-AVG"] == 0.75


class CountingBackend(DummyBackend):
    """dummy:first that counts generated samples and can crash after N of them."""

    def __init__(self, crash_after: int | None = None) -> None:
        super().__init__("first", batch_size=2)
        self.calls: list[str] = []
        self.crash_after = crash_after

    def generate(self, batch: list[Prepared]) -> list[Response]:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise RuntimeError("simulated crash")
        self.calls.extend(p.request.sample_id for p in batch)
        return super().generate(batch)


def test_killed_run_resumes_without_regenerating(tmp_path, motionbench_root, monkeypatch):
    import vpbench.api as api

    out = tmp_path / "run"
    cfg = RunConfig(model="dummy:first", tasks=("motionbench",), output=out,
                    data_roots={"motionbench": motionbench_root}, cache=False)
    first = CountingBackend(crash_after=2)
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: first)
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(cfg, echo=lambda s: None)
    assert first.calls == ["qa1", "qa2_1"]
    lines = (out / "motionbench" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2
    second = CountingBackend()
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: second)
    resumed = evaluate(cfg, echo=lambda s: None)
    assert second.calls == ["qa3", "qa4", "qa5"]  # nothing generated twice
    fresh_out = tmp_path / "fresh"
    third = CountingBackend()
    monkeypatch.setattr(api, "load_backend", lambda spec, opts: third)
    fresh = evaluate(RunConfig(model="dummy:first", tasks=("motionbench",), output=fresh_out,
                               data_roots={"motionbench": motionbench_root}, cache=False), echo=lambda s: None)
    assert resumed["motionbench"].metrics == fresh["motionbench"].metrics
    assert {m.name: m.value for m in fresh["motionbench"].metrics}["Dev-AVG"] == 0.5  # 'A' right on qa2_1, qa4


def test_torn_last_line_is_dropped_and_redone(tmp_path, motionbench_root):
    out = tmp_path / "run"
    args = ["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", str(motionbench_root),
            "--output", str(out)]
    assert cli.main(args) == 0
    path = out / "motionbench" / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    assert cli.main(args) == 0
    assert len(path.read_text().splitlines()) == 5


def test_changed_protocol_into_same_dir_is_refused(tmp_path, motionbench_root):
    out = tmp_path / "run"
    base = ["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", str(motionbench_root),
            "--output", str(out)]
    assert cli.main(base) == 0
    with pytest.raises(RunDirMismatch):
        evaluate(RunConfig(model="dummy:first", tasks=("motionbench",), output=out,
                           data_roots={"motionbench": motionbench_root},
                           overrides={"protocol.fps": "2"}), echo=lambda s: None)


def test_response_cache_serves_a_second_run(tmp_path, motionbench_root):
    cache = tmp_path / "cache.sqlite"
    for name in ("a", "b"):
        assert cli.main(["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root",
                         str(motionbench_root), "--output", str(tmp_path / name), "--cache-path", str(cache)]) == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["cache"] == {"hits": 5, "misses": 0}


def test_config_typos_fail_with_suggestions(tmp_path, motionbench_root, capsys):
    base = ["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", str(motionbench_root),
            "--output", str(tmp_path / "o")]
    assert cli.main(base + ["--set", "protocol.fsp=2"]) == 2
    assert "did you mean 'fps'" in capsys.readouterr().err
    assert cli.main(base[:4] + ["motionbnch"] + base[5:]) == 2
    assert "did you mean 'motionbench'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(base + ["--batch-sise", "2"])
    assert "did you mean '--batch-size'" in capsys.readouterr().err


def test_replay_missing_samples_fail_preflight(tmp_path, motionbench_root):
    partial = {k: v for k, v in ANSWERS.items() if k != "qa3"}
    cfg = RunConfig(model=f"replay:{_replay(tmp_path, partial)}", tasks=("motionbench",), output=tmp_path / "o",
                    data_roots={"motionbench": motionbench_root})
    with pytest.raises(MissingMedia, match="qa3"):
        evaluate(cfg, echo=lambda s: None)
    res = evaluate(RunConfig(**{**cfg.__dict__, "allow_missing": True}), echo=lambda s: None)["motionbench"]
    assert res.partial and res.counts["n_excluded"] == 1 and res.coverage == 0.8


@pytest.mark.parametrize("damage, message", [
    ("delete", "missing"), ("empty", "0 bytes"), ("truncate", "does not decode"),
])
def test_broken_videos_fail_preflight_before_model_loads(tmp_path, motionbench_with_videos, damage, message):
    video = motionbench_with_videos / "self-collected" / "vidB.mp4"
    if damage == "delete":
        video.unlink()
    elif damage == "empty":
        video.write_bytes(b"")
    else:
        video.write_bytes(video.read_bytes()[:300])
    cfg = RunConfig(model="dummy:first", tasks=("motionbench",), output=tmp_path / "o",
                    data_roots={"motionbench": motionbench_with_videos})
    backend = DummyBackend("first", needs_frames=True)
    import vpbench.api as api

    orig = api.load_backend
    api.load_backend = lambda spec, opts: backend
    try:
        with pytest.raises(MissingMedia) as e:
            evaluate(cfg, echo=lambda s: None)
    finally:
        api.load_backend = orig
    text = str(e.value)
    assert "preflight failed for 1 of 5 samples" in text and "qa3" in text and "vidB.mp4" in text and message in text
    assert "--allow-missing" in text


def test_export_motionbench_submission_covers_test_split(tmp_path, motionbench_root):
    out = tmp_path / "run"
    cli.main(["run", "--model", f"replay:{_replay(tmp_path, ANSWERS)}", "--tasks", "motionbench",
              "--data-root", str(motionbench_root), "--output", str(out)])
    sub = tmp_path / "submission.json"
    assert cli.main(["export", str(out), "--task", "motionbench", "--output", str(sub)]) == 0
    assert json.loads(sub.read_text()) == {"qa1": "B", "qa2_1": "B", "qa3": "T", "qa4": "A", "qa5": "C"}


def test_protocol_presets_and_overrides_compose():
    from vpbench.engine.overrides import resolve
    from vpbench.registry import get_task

    task = get_task("videomme")
    r = resolve({"videomme.preset": "lmms_eval", "protocol.nframes": "8"}, ["videomme"])
    p = task.resolve_protocol(r.preset.get("videomme"), r.protocol["videomme"])
    assert p.prompt_version == "videomme-lmms-eval-0.7.3-default" and p.nframes == 8 and p.fps is None
    assert p.fingerprint() != task.protocol.fingerprint()
    with pytest.raises(ConfigError, match="did you mean 'lmms_eval'"):
        task.resolve_protocol("lmms-eval", {})
    with pytest.raises(ConfigError, match="did you mean 'videomme.preset'"):
        resolve({"videomme.prest": "x"}, ["videomme"])


def test_videommmu_delta_knowledge_is_derived_when_both_runs_present(tmp_path):
    from vpbench.metrics.videommmu import delta_knowledge
    from vpbench.registry import get_task

    data = tmp_path / "vmmmu"  # one folder serves both VideoMMMU tasks
    get_task("videommmu").synth(data, 0)
    out = tmp_path / "run"
    evaluate(RunConfig(model="dummy:random:1", tasks=("videommmu", "videommmu_adaptation_qonly"), output=out,
                       data_roots={"videommmu": data, "videommmu_adaptation_qonly": data}, cache=False),
             echo=lambda s: None)
    saved = json.loads((out / "results.json").read_text())["derived"]["videommmu/Δknowledge"]
    from vpbench.engine.records import RecordStore

    video = list(RecordStore(out / "videommmu" / "records.jsonl").load().values())
    qonly = list(RecordStore(out / "videommmu_adaptation_qonly" / "records.jsonl").load().values())
    assert saved["value"] == pytest.approx(delta_knowledge(video, qonly).value)


def _run_with(monkeypatch, backend, cfg):
    import vpbench.api as api

    monkeypatch.setattr(api, "load_backend", lambda spec, opts: backend)
    return evaluate(cfg, echo=lambda s: None)


def test_preflight_checks_each_clip_against_the_protocol(tmp_path, motionbench_with_videos, monkeypatch):
    """20-frame clips at 10 fps: 24 frames cannot be sampled → excluded at preflight, not scored wrong."""
    cfg = RunConfig(model="dummy:first", tasks=("motionbench",), output=tmp_path / "o",
                    data_roots={"motionbench": motionbench_with_videos}, overrides={"protocol.nframes": "24"})
    with pytest.raises(MissingMedia, match="too short"):
        _run_with(monkeypatch, DummyBackend("first", needs_frames=True), cfg)


class FlakyBackend(DummyBackend):
    """Fails (as a per-sample error, like an OOM inside hf generate) on the first call for 'qa3'."""

    def __init__(self):
        super().__init__("first", batch_size=1)
        self.calls: list[str] = []

    def generate(self, batch):
        self.calls += [p.request.sample_id for p in batch]
        if [p.request.sample_id for p in batch] == ["qa3"] and self.calls.count("qa3") == 1:
            return [Response("qa3", "", error="CUDA out of memory")]
        return super().generate(batch)


def test_failed_samples_are_retried_on_resume(tmp_path, motionbench_root, monkeypatch):
    cfg = RunConfig(model="dummy:first", tasks=("motionbench",), output=tmp_path / "o",
                    data_roots={"motionbench": motionbench_root}, cache=False)
    backend = FlakyBackend()
    first = _run_with(monkeypatch, backend, cfg)["motionbench"]
    assert first.counts["n_failed"] == 1
    second = _run_with(monkeypatch, backend, cfg)["motionbench"]
    assert backend.calls.count("qa3") == 2 and backend.calls.count("qa1") == 1
    assert second.counts["n_failed"] == 0


def test_parser_change_on_resume_reparses_finished_records(tmp_path, motionbench_root):
    out = tmp_path / "run"
    base = ["run", "--model", f"replay:{_replay(tmp_path, ANSWERS)}", "--tasks", "motionbench",
            "--data-root", str(motionbench_root), "--output", str(out)]
    assert cli.main(base) == 0
    assert cli.main(base + ["--set", "parser=lmms_eval"]) == 0
    assert {m["name"]: m["value"] for m in _results(out)["metrics"]}["Dev-AVG"] == 0.75
    lines = [json.loads(x) for x in (out / "motionbench" / "records.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all(r["parser"].startswith("lmms_eval@") for r in lines)


def test_running_another_task_into_a_dir_keeps_the_first(tmp_path, motionbench_root):
    from vpbench.registry import get_task

    vqa = tmp_path / "vru"
    get_task("vru_accident_vqa").synth(vqa, 0)
    out = tmp_path / "run"
    assert cli.main(["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root",
                     str(motionbench_root), "--output", str(out)]) == 0
    assert cli.main(["run", "--model", "dummy:first", "--tasks", "vru_accident_vqa", "--data-root", str(vqa),
                     "--output", str(out)]) == 0
    assert cli.main(["score", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["results"]) == {"motionbench", "vru_accident_vqa"}
    assert set(saved["manifest"]["tasks"]) == {"motionbench", "vru_accident_vqa"}


def test_complete_last_record_without_newline_is_kept_and_ended(tmp_path, motionbench_root):
    out = tmp_path / "run"
    args = ["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", str(motionbench_root),
            "--output", str(out)]
    assert cli.main(args) == 0
    path = out / "motionbench" / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4]))  # 4 complete records, the last without its newline
    assert cli.main(args) == 0
    assert len(path.read_text().splitlines()) == 5


def test_null_override_clears_optional_fields_and_limit_must_be_positive(tmp_path, motionbench_root, capsys):
    from vpbench.engine.overrides import resolve
    from vpbench.registry import get_task

    task = get_task("motionbench")
    r = resolve({"protocol.system_prompt": "null"}, ["motionbench"])
    assert task.resolve_protocol(None, r.protocol["motionbench"]).system_prompt is None
    with pytest.raises(SystemExit):
        cli.main(["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", str(motionbench_root),
                  "--output", str(tmp_path / "o"), "--limit", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_replaced_video_is_a_cache_miss(tmp_path, motionbench_with_videos, monkeypatch):
    import os

    cache = tmp_path / "cache.sqlite"

    def run(name):
        backend = DummyBackend("first", needs_frames=True)
        cfg = RunConfig(model="dummy:first", tasks=("motionbench",), output=tmp_path / name,
                        data_roots={"motionbench": motionbench_with_videos}, cache_path=cache)
        _run_with(monkeypatch, backend, cfg)
        return json.loads((tmp_path / name / "manifest.json").read_text())["cache"]

    assert run("a") == {"hits": 0, "misses": 5}
    assert run("b") == {"hits": 5, "misses": 0}
    video = motionbench_with_videos / "self-collected" / "vidB.mp4"
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file was replaced
    assert run("c") == {"hits": 4, "misses": 1}


def test_rescore_covers_the_last_runs_sample_set(tmp_path, motionbench_root):
    out = tmp_path / "run"
    base = ["run", "--model", "dummy:first", "--tasks", "motionbench", "--data-root", str(motionbench_root),
            "--output", str(out)]
    assert cli.main(base) == 0
    assert cli.main(base + ["--limit", "2"]) == 0
    assert _results(out)["counts"]["n_evaluated"] == 2
    assert cli.main(["score", str(out)]) == 0
    assert _results(out)["counts"]["n_evaluated"] == 2
