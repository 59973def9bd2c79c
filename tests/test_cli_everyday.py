"""The everyday CLI, as a new user meets it (issue 13): each item through `vpbench` itself,
checking the exit code and the message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.models.replay import write_replay
from vpbench.registry import get_task, task_names

REPO = Path(__file__).resolve().parent.parent
TINY_YAML = REPO / "recipes/configs/sft_contrastive/tiny.yaml"


@pytest.fixture(scope="module")
def mb(tmp_path_factory) -> Path:
    """Generated MotionBench data (18 questions, 14 with answers)."""
    root = tmp_path_factory.mktemp("mb") / "data"
    assert cli.main(["synth", "motionbench", "--output", str(root)]) == 0
    return root


def _replay(mb: Path, path: Path, answer=lambda i, s: "A") -> Path:
    samples = get_task("motionbench").load_samples(mb)
    write_replay(path, "motionbench", [(s.id, answer(i, s)) for i, s in enumerate(samples)])
    return path


def _run(mb: Path, out: Path, *extra: str, model: str | None = None) -> int:
    return cli.main(["run", "--model", model or "dummy:first", "--tasks", "motionbench", "--data-root", str(mb),
                     "--output", str(out), *extra])


# -- --version, broken pipe, columns, --help ------------------------------------------------------
def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    import vpbench

    assert capsys.readouterr().out.strip() == f"vpbench {vpbench.__version__}"


def test_stdout_closed_early_is_quiet() -> None:
    """`vpbench tasks | head`: the reader is gone before vpbench writes; no traceback, exit 141."""
    proc = subprocess.Popen([sys.executable, "-m", "vpbench", "tasks"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_tasks_columns_line_up_past_the_longest_name(capsys) -> None:
    assert cli.main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == task_names()
    width = max(map(len, task_names())) + 2
    assert all(ln[width] == "v" and ln[width - 2:width] == "  " for ln in lines), lines


def test_help_shows_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "samples per generate call (default: the backend's; hf: 8 where batching is exact)" in out
    assert "cpu, cuda, cuda:N or auto (default: auto)" in out
    assert "--output OUTPUT, --output_path OUTPUT" in out and "--batch-size BATCH_SIZE, --batch_size BATCH_SIZE" in out


@pytest.mark.parametrize("argv, typed, hint", [
    (["export", "r", "--task", "motionbench", "--output", "x", "--seed", "1"], "--seed", None),
    (["model", "tiny", "--output", "x", "--set", "a=1"], "--set", "--seed"),
    (["run", "--model", "dummy:first", "--tasks", "motionbench", "--output", "x", "--seeed", "3"], "--seeed", "--seed"),
    (["synth", "motionbench", "--output", "x", "--overwrit"], "--overwrit", "--overwrite"),
])
def test_did_you_mean_uses_the_subcommands_own_flags_never_the_typed_one(argv, typed, hint, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"unknown argument '{typed}'" in err
    assert f"did you mean '{typed}'" not in err
    assert (f"(did you mean '{hint}'?)" in err) if hint else "did you mean" not in err, err


def test_mistyped_subcommand_gets_a_suggestion(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["scroe", "runs/x"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'scroe'" in err and "(did you mean 'score'?)" in err
    with pytest.raises(SystemExit):
        cli.main(["train", "stf"])
    assert "(did you mean 'sft'?)" in capsys.readouterr().err


# -- one --set convention -------------------------------------------------------------------------
def test_train_sft_takes_set_and_warns_on_the_positional_form(tmp_path, capfd) -> None:
    """Both forms reach the strict recipe config (checked before the recipe process starts); only
    --set is quiet."""
    base = ["train", "sft", "--config", str(TINY_YAML)]
    assert cli.main([*base, "--set", "contrastive.block=[1]"]) == 2
    err = capfd.readouterr().err
    assert "did you mean 'blocks'" in err and "deprecated" not in err
    assert cli.main([*base, "contrastive.block=[1]"]) == 2
    err = capfd.readouterr().err
    assert "positional overrides are deprecated; use --set KEY=VALUE (e.g. --set contrastive.block=[1])" in err
    assert "did you mean 'blocks'" in err


def test_train_sft_refuses_to_retrain_over_an_earlier_run(tmp_path, capfd) -> None:
    out = tmp_path / "sft"
    (out / "checkpoints" / "step_8").mkdir(parents=True)
    (out / "checkpoints" / "latest").write_text("step_8\n")
    assert cli.main(["train", "sft", "--config", str(TINY_YAML), "--set", f"train.output_dir={out}",
                     "--set", "train.resume_from=null"]) == 2
    err = capfd.readouterr().err
    assert f"{out} already holds a training run (latest checkpoint step_8)" in err
    assert "--set train.resume_from=latest" in err and "--set train.overwrite=true" in err
    assert (out / "checkpoints" / "latest").is_file()  # nothing deleted


def test_train_sft_config_found_outside_the_checkout(tmp_path, monkeypatch) -> None:
    from vpbench.resources import resolve_recipe_config

    monkeypatch.chdir(tmp_path)
    assert resolve_recipe_config("recipes/configs/sft_contrastive/tiny.yaml") == TINY_YAML
    with pytest.raises(Exception, match="config file not found: recipes/configs/nope.yaml"):
        resolve_recipe_config("recipes/configs/nope.yaml")


# -- score: history, consistent counts, --output --------------------------------------------------
def test_score_keeps_a_history_and_consistent_counts(mb, tmp_path, capsys) -> None:
    samples = get_task("motionbench").load_samples(mb)
    replay = _replay(mb, tmp_path / "p.jsonl", lambda i, s: "The answer is B" if i % 2 else "xyz")
    run = tmp_path / "run"
    assert _run(mb, run, model=f"replay:{replay}") == 0
    capsys.readouterr()
    copy = tmp_path / "copy"
    assert cli.main(["score", str(run), "--parser", "lmms_eval", "--output", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"re-scored run (copy of {run}): {copy.resolve()}" in out and "scoring_history" in out
    assert "scoring_history" not in json.loads((run / "manifest.json").read_text())  # original untouched
    manifest = json.loads((copy / "manifest.json").read_text())
    results = json.loads((copy / "results.json").read_text())
    (entry,) = manifest["scoring_history"]
    change = entry["tasks"]["motionbench"]
    # official polish_answer: "The answer is B" -> "T", "xyz" -> "x" (parsed, wrong); lmms-eval: B / nothing
    n_xyz = sum(1 for i in range(len(samples)) if i % 2 == 0)
    scorable = [(i, s) for i, s in enumerate(samples) if s.answer is not None]
    right = sum(1 for i, s in scorable if i % 2 and s.answer == "B")
    assert change["parser"] == ["official@motionbench-polish_answer@dcc9b07", "lmms_eval@lmms-eval-0.7.3-cli+motionbench@0.7.3"]
    assert change["n_records_reparsed"] == len(samples)
    assert change["counts_changed"] == {"n_unparsed": [0, n_xyz]}
    assert change["metrics_changed"]["Dev-AVG"] == [0.0, pytest.approx(right / len(scorable))]
    assert entry["copied_from"] == str(run) and entry["argv"][:2] == ["vpbench", "score"]
    assert manifest["tasks"]["motionbench"]["n_unparsed"] == results["results"]["motionbench"]["counts"]["n_unparsed"] \
        == n_xyz
    assert cli.main(["score", str(copy)]) == 0  # a second scoring appends, never rewrites the first
    history = json.loads((copy / "manifest.json").read_text())["scoring_history"]
    assert len(history) == 2 and history[0] == entry and history[1]["tasks"]["motionbench"]["counts_changed"] == {}
    assert cli.main(["score", str(run), "--output", str(copy)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err


# -- export, synth --------------------------------------------------------------------------------
def test_export_refuses_a_partial_run_without_allow_partial(mb, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert _run(mb, run, "--limit", "5") == 0
    capsys.readouterr()
    sub = tmp_path / "sub.json"
    assert cli.main(["export", str(run), "--task", "motionbench", "--output", str(sub)]) == 2
    err = capsys.readouterr().err
    assert "partial run of motionbench: 13 of 18 samples have no answer" in err and "--allow-partial" in err
    assert not sub.exists()
    assert cli.main(["export", str(run), "--task", "motionbench", "--output", str(sub), "--allow-partial"]) == 0
    cap = capsys.readouterr()
    assert "warning: exporting a partial run: 13 of 18 samples have no answer" in cap.err
    assert f"motionbench: wrote 5 answers to {sub.resolve()}" in cap.out and sub.is_file()
    assert _run(mb, run) == 0  # completing the run makes the export whole
    assert cli.main(["export", str(run), "--task", "motionbench", "--output", str(sub)]) == 0
    assert "wrote 18 answers" in capsys.readouterr().out


def test_synth_refuses_another_seed_in_the_same_folder(tmp_path, capsys) -> None:
    out = tmp_path / "mb"
    assert cli.main(["synth", "motionbench", "--output", str(out), "--seed", "0"]) == 0
    videos0 = sorted(p.name for p in out.rglob("*.mp4"))
    assert cli.main(["synth", "motionbench", "--output", str(out), "--seed", "0"]) == 0  # same data: fine
    capsys.readouterr()
    assert cli.main(["synth", "motionbench", "--output", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{out} already holds motionbench data generated with --seed 0" in err and "--overwrite" in err
    assert sorted(p.name for p in out.rglob("*.mp4")) == videos0  # untouched
    assert cli.main(["synth", "motionbench", "--output", str(out), "--seed", "1", "--overwrite"]) == 0
    assert json.loads((out / ".vpbench-synth.json").read_text()) == {"task": "motionbench", "seed": 1}
    rows = (out / "video_info.meta.jsonl").read_text().splitlines()
    files = {json.loads(r)["video_path"] for r in rows}
    assert {p.name for p in out.rglob("*.mp4")} == {Path(f).name for f in files}  # only seed 1's videos
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert cli.main(["synth", "motionbench", "--output", str(other)]) == 2
    assert "holds files not written by `vpbench synth`" in capsys.readouterr().err


# -- output: units, where the results went --------------------------------------------------------
def test_run_labels_units_and_says_where_results_went(mb, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert _run(mb, run) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "scores in % (0-100) with 95% CIs [low, high]; the JSON files store fractions (0-1)"
    assert f"run directory: {run.resolve()}" in out
    files = out.split("files: ")[1].splitlines()[0].split(", ")
    assert {"manifest.json", "results.json", "motionbench/records.jsonl", "motionbench/result.json"} <= set(files)
    assert all((run / f).is_file() for f in files)


# -- lmms-eval / lm-eval habits -------------------------------------------------------------------
def test_lmms_eval_flags_map_onto_vpbench_options(mb, tmp_path) -> None:
    out = tmp_path / "run"
    assert cli.main(["run", "--model", "qwen2_5_vl", "--model_args", "pretrained=dummy:first,max_pixels=200704",
                     "--gen_kwargs", "max_new_tokens=8,temperature=0,do_sample=false", "--seed", "3",
                     "--tasks", "motionbench", "--data-root", str(mb), "--output_path", str(out),
                     "--batch_size", "2", "--set", "protocol.max_new_tokens=9"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    protocol = manifest["tasks"]["motionbench"]["protocol"]
    assert manifest["config"]["model"] == "dummy:first" and manifest["config"]["backend"]["batch_size"] == 2
    assert (protocol["max_pixels"], protocol["seed"], protocol["temperature"]) == (200704, 3, 0.0)
    assert protocol["max_new_tokens"] == 9  # an explicit --set wins over --gen_kwargs


@pytest.mark.parametrize("extra, message", [
    (["--log_samples", "--verbosity", "DEBUG"],
     ["--log_samples: vpbench always logs every sample", "--verbosity: vpbench has no log levels"]),
    (["--limit", "0.1"], ["not a fraction: got '0.1'; e.g. --limit 50"]),
    (["--gen_kwargs", "num_beams=4"], ["--gen_kwargs key 'num_beams' has no vpbench equivalent"]),
    (["--model_args", "attn_impl=x"], ["--model_args key 'attn_impl' has no vpbench equivalent"]),
])
def test_other_harness_flags_are_answered_with_the_vpbench_way(mb, tmp_path, extra, message, capsys) -> None:
    try:
        code = _run(mb, tmp_path / "r", *extra)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and all(m in err for m in message), err
    assert not (tmp_path / "r" / "manifest.json").exists()


def test_tasks_list_lists_tasks(capsys) -> None:
    assert cli.main(["run", "--tasks", "list"]) == 0
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()] == task_names()


# -- start-up cost --------------------------------------------------------------------------------
def test_replay_dummy_and_score_runs_never_import_torch(mb, tmp_path) -> None:
    replay = _replay(mb, tmp_path / "p.jsonl")
    code = f"""
import sys
from vpbench import cli
cli.build_parser()  # every command module registered: none may import a heavy library at import time
loaded = sorted(m for m in ("torch", "transformers", "numpy", "pandas", "scipy", "aiohttp") if m in sys.modules)
assert not loaded, loaded
assert cli.main(["run", "--model", "replay:{replay}", "--tasks", "motionbench", "--data-root", "{mb}",
                 "--output", "{tmp_path / 'r1'}"]) == 0
assert cli.main(["run", "--model", "dummy:random:1", "--tasks", "motionbench", "--data-root", "{mb}",
                 "--output", "{tmp_path / 'r2'}"]) == 0
assert cli.main(["score", "{tmp_path / 'r1'}", "--parser", "lmms_eval"]) == 0
heavy = sorted(m for m in ("torch", "transformers", "accelerate") if m in sys.modules)
print("HEAVY", heavy)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    env = json.loads((tmp_path / "r1" / "manifest.json").read_text())["environment"]
    assert env["gpus"] is None and env["packages"]["torch"]  # versions still recorded, GPUs not queried


@pytest.mark.slow  # two recipe processes (torch + a training step): ~30 s CPU, minutes on a loaded machine
def test_train_sft_rerun_resumes_and_prints_the_export_path(tmp_path, capfd) -> None:
    """The tiny command run twice: the second run resumes at the last step, trains nothing, keeps
    the export, and both print where the model is."""
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.train.manifest import synth_sft_manifest

    model = build_tiny_qwen(tmp_path / "model", seed=0)
    manifest = synth_sft_manifest(tmp_path / "data", n_clips=4, seed=0)
    out = tmp_path / "sft"
    argv = ["train", "sft", "--config", str(TINY_YAML), "--set", f"model.path={model}", "--set",
            f"data.manifest={manifest}", "--set", f"train.output_dir={out}", "--set", "train.max_steps=1",
            "--set", "train.grad_accum=1", "--set", "train.save_every=0"]
    assert cli.main(argv) == 0
    first = capfd.readouterr().out
    weights = out / "export" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert cli.main(argv) == 0
    second = capfd.readouterr().out
    for text in (first, second):
        assert f"exported model: {(out / 'export').resolve()}" in text
    assert "step 1/1" in first and "step 1/1" not in second
    assert "already trained to step 1 (train.max_steps=1): nothing to do" in second
    assert weights.stat().st_mtime_ns == stamp
