"""The tiny learning setup: reduced-step training with a recorded accuracy, README command 1's job twice
(slow), the shuffled-frames copy and (slow) the full-length shuffled-frames control.

Golden values are exact under the pinned stack (tests/golden/tiny_learn_accuracy.json, keyed by test and
transformers major version). Re-record after an intended change with

    VPBENCH_RECORD_GOLDEN=1 HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/pytest tests/test_tiny_learning.py -m "slow or not slow"

The full-length figures (learning curve, gap, control at full length) live in benchmarks/tiny_learning.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "tiny_learn_accuracy.json"
REDUCED = ["train.max_steps=24", "train.save_every=0", "train.log_every=8"]


def _golden_key(test: str) -> str:
    import transformers

    return f"{test}/transformers{transformers.__version__.split('.')[0]}"


def _check_golden(test: str, value: dict, setup: str) -> None:
    key = _golden_key(test)
    if os.environ.get("VPBENCH_RECORD_GOLDEN"):
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
        golden[key] = {**value, "setup": setup}
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())[key]
    assert value == {k: want[k] for k in value}


def _dev_avg_and_gap(run: Path) -> dict:
    """Dev-AVG with its CI, the gap, the option-text share, and a hash of every response (sample order):
    any change in what the trained model says changes the golden, even where the accuracy does not."""
    import hashlib

    from vpbench.synth.tiny_setup import option_text_accuracy

    res = json.loads((run / "results.json").read_text())["results"]["motionbench"]
    acc = next(m for m in res["metrics"] if m["name"] == "Dev-AVG")
    records = [json.loads(x) for x in (run / "motionbench" / "records.jsonl").read_text().splitlines()]
    responses = "\n".join(r["response"] for r in sorted(records, key=lambda r: r["sample_id"]))
    return {"dev_avg": acc["value"], "ci": [acc["ci_low"], acc["ci_high"]], "n": acc["n"],
            "gap_delta": res["perception_gap"]["delta"]["value"], "option_text": option_text_accuracy(run)[0],
            "responses_sha256": hashlib.sha256(responses.encode()).hexdigest()}


def test_reduced_training_reaches_recorded_accuracy(tmp_path: Path) -> None:
    """tiny_learn.yaml for 24 steps on a 24-video split, evaluated by `vpbench run` (official parser,
    the config's frame sampling, perception gap) on a held-out 12-video split: exact recorded numbers."""
    import importlib.util
    import sys

    from vpbench.cli import main
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench
    from vpbench.synth.tiny_demo import CONFIG, TRAIN_MC_ANSWER
    from vpbench.synth.tiny_setup import eval_sets
    from vpbench.synth.training import synth_training_split
    from vpbench.train.config import load_config

    manifest = synth_training_split(tmp_path / "train", seed=0, n_videos=24, captions=False,
                                    mc_answer=TRAIN_MC_ANSWER).with_name("sft_qa.jsonl")
    synth_motionbench(tmp_path / "eval", seed=1, n_videos=12)
    model = build_tiny_qwen(tmp_path / "model", seed=0, preset="small")
    cfg = load_config(CONFIG, {"model.path": str(model), "data.manifest": str(manifest),
                               "train.output_dir": str(tmp_path / "sft"), **dict(o.split("=") for o in REDUCED)})
    spec = importlib.util.spec_from_file_location("sft_contrastive_recipe", ROOT / "recipes" / "sft_contrastive.py")
    recipe = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = recipe
    spec.loader.exec_module(recipe)  # type: ignore[union-attr]
    recipe.run(cfg)
    args = ["run", "--model", str(tmp_path / "sft" / "export"), "--tasks", "motionbench", "--data-root",
            str(tmp_path / "eval"), "--output", str(tmp_path / "run"), "--batch-size", "8", "--device", "cpu",
            "--perception-gap", "--set", "gap.scorer=motion_energy"]
    for s in eval_sets(cfg.data):
        args += ["--set", s]
    assert main(args) == 0
    _check_golden("reduced_training", _dev_avg_and_gap(tmp_path / "run"),
                  "24-video split (seed 0), 12-video eval (seed 1), tiny_learn.yaml " + " ".join(REDUCED))


def _run_demo(out: Path, capfd: pytest.CaptureFixture) -> str:
    from vpbench.synth import tiny_demo

    assert tiny_demo.main(["--out", str(out), "--n-train", "24", "--n-eval", "12", *REDUCED]) == 0
    return capfd.readouterr().out


@pytest.mark.slow
def test_demo_prints_four_rows_and_gap_twice_with_recorded_accuracy(tmp_path: Path, capfd) -> None:
    out = tmp_path / "demo"
    first = _run_demo(out, capfd)
    rows = {}
    for label in ("chance (uniform guess)", "dummy:first", "tiny Qwen2.5-VL, untrained", "tiny Qwen2.5-VL, after stage 1"):
        line = next(ln for ln in first.splitlines() if ln.strip().startswith(label))
        rows[label] = [float(x) for x in re.findall(r"[-+]?\d+\.\d+", line[len(label) + 2:])]
    assert len(rows["chance (uniform guess)"]) == 1 and all(len(v) == 3 for k, v in rows.items() if "chance" not in k)
    assert "perception gap of the trained model" in first
    for where in ("training split:", "held-out split:", "untrained model:", "stage-1 run:", "eval runs:"):
        assert where in first
    export = out / "train" / "sft_contrastive" / "export"
    assert (export / "model.safetensors").is_file()
    _check_golden("demo", _dev_avg_and_gap(out / "runs" / "tiny_stage1"),
                  "tiny_demo --n-train 24 --n-eval 12 " + " ".join(REDUCED))
    # the second run reuses data, model, training and finished evaluations, and prints the same table
    mtime = (export / "model.safetensors").stat().st_mtime_ns
    second = _run_demo(out, capfd)
    assert "reusing the finished training run" in second
    assert (export / "model.safetensors").stat().st_mtime_ns == mtime
    table = lambda text: [ln for ln in text.splitlines() if ln.startswith("  ")]  # noqa: E731
    assert table(second) == table(first)


def test_shuffled_frames_copy_exchanges_frames_across_videos(tmp_path: Path) -> None:
    from vpbench.synth.render import read_mp4
    from vpbench.synth.tiny_setup import shuffle_frames_across_videos
    from vpbench.synth.training import synth_training_split

    src = tmp_path / "split"
    synth_training_split(src, seed=0, n_videos=4, captions=False)
    dst = tmp_path / "shuffled"
    shuffle_frames_across_videos(src, dst, seed=0)
    for name in ("sft.jsonl", "sft_qa.jsonl", "rl.jsonl"):
        assert (dst / name).read_bytes() == (src / name).read_bytes()
    clips = sorted(p.name for p in (src / "clips").iterdir())
    orig = np.stack([read_mp4(src / "clips" / c)[0].astype(np.int16) for c in clips])  # [N, T, H, W, 3]
    mixed = np.stack([read_mp4(dst / "clips" / c)[0].astype(np.int16) for c in clips])
    moved = 0
    for t in range(orig.shape[1]):
        # nearest source clip of every shuffled clip's frame t: a permutation of the clips
        err = np.abs(mixed[:, None, t] - orig[None, :, t]).mean(axis=(2, 3, 4))  # [N new, N src]
        src_of = err.argmin(axis=1)
        assert sorted(src_of.tolist()) == list(range(len(clips)))
        best, second = np.sort(err, axis=1)[:, :2].T
        assert (best < 4.0).all() and (best < 0.6 * second).all()  # re-encoding noise, well apart from the rest
        moved += int((src_of != np.arange(len(clips))).sum())
    assert moved > orig.shape[1] * len(clips) // 2


@pytest.fixture(scope="module")
def control_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """README command 1's training on the real split and on its shuffled-frames copy, both evaluated on the
    same held-out split (about 25 minutes on 2 cores: slow tests only)."""
    from vpbench.synth import tiny_demo
    from vpbench.synth.tiny_setup import chance_accuracy, eval_sets, shuffle_frames_across_videos
    from vpbench.train.config import load_config

    tmp = tmp_path_factory.mktemp("control")
    paths = tiny_demo.prepare(tmp, 1800, 300)  # README command 1's sizes
    sets = eval_sets(load_config(tiny_demo.CONFIG).data)
    export, _ = tiny_demo.train(paths)
    real = tiny_demo.evaluate(str(export), paths["eval"], tmp / "r_real", sets)
    shuffle_frames_across_videos(paths["train"], tmp / "shuffled", seed=0)
    cpaths = {**paths, "train": tmp / "shuffled", "sft": tmp / "train_shuffled"}
    cexport, _ = tiny_demo.train(cpaths)
    ctrl = tiny_demo.evaluate(str(cexport), paths["eval"], tmp / "r_ctrl", sets)
    return {"real": real, "ctrl": ctrl, "chance": chance_accuracy(paths["eval"])[0]}


@pytest.mark.slow
def test_shuffled_frames_control_sees_nothing_while_pixels_teach_what_is_shown(control_runs: dict) -> None:
    """What the answers name (the option text before the letter): measured 51.1% trained on the real clips,
    26.6% on the shuffled-frames copy (2026-12-01, 323 dev questions; chance ~27%)."""
    from vpbench.synth.tiny_setup import option_text_accuracy

    real, n = option_text_accuracy(control_runs["real"])
    ctrl, n_ctrl = option_text_accuracy(control_runs["ctrl"])
    assert n == n_ctrl > 300
    assert ctrl < control_runs["chance"] + 0.05
    assert real > ctrl + 0.15


@pytest.mark.slow
def test_shuffled_frames_control_stays_near_chance_while_pixels_teach(control_runs: dict) -> None:
    """Dev-AVG (the official parser's letter): the real split's CI above the control's, the control near chance.
    Measured 2026-12-01 (323 dev questions, chance 27.3%): real 37.8 [32.3, 43.0], control 25.1 [20.6, 30.1]."""
    from vpbench.synth import tiny_demo

    real = tiny_demo._metric(control_runs["real"], "Dev-AVG")
    ctrl = tiny_demo._metric(control_runs["ctrl"], "Dev-AVG")
    chance = control_runs["chance"]
    assert ctrl["ci_low"] <= chance + 0.10 and ctrl["value"] < chance + 0.15
    assert real["ci_low"] > ctrl["ci_high"]


def test_tiny_learn_config_samples_the_frames_the_split_indexes() -> None:
    """The split's key_frames / n_frames index TINY_PROTOCOL's frames; the config must sample exactly those."""
    from vpbench.synth.tiny_demo import CONFIG
    from vpbench.synth.tiny_setup import eval_sets
    from vpbench.synth.training import TINY_PROTOCOL
    from vpbench.train.config import load_config

    assert CONFIG.read_text().splitlines()[0].startswith("# Run")
    data = load_config(CONFIG).data
    keys = ("fps", "nframes", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels")
    assert {k: getattr(data, k) for k in keys} == {k: getattr(TINY_PROTOCOL, k) for k in keys}
    assert eval_sets(data)[:2] == ["motionbench.protocol.fps=2.0", "motionbench.protocol.nframes=null"]


def test_demo_folder_of_another_setup_is_started_clean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Same setup: everything kept. Another setup (here another clip rate, as after the 10 -> 4 fps change):
    the demo's own folders go, anything else in --out stays, and the new setup is recorded."""
    from vpbench.synth.tiny_demo import setup_fingerprint, start_clean_if_stale

    out = tmp_path / "demo"
    fp = setup_fingerprint(24, 12, ["train.max_steps=24"])
    start_clean_if_stale(out, fp)
    for name in ("data", "train", "runs", "tiny-qwen2.5-vl", "logs", "notes"):
        (out / name).mkdir()
        (out / name / "f").write_text("x")
    start_clean_if_stale(out, fp)
    assert sorted(p.name for p in out.iterdir()) == ["data", "demo_setup.json", "logs", "notes", "runs",
                                                     "tiny-qwen2.5-vl", "train"]
    assert "starting clean" not in capsys.readouterr().out
    start_clean_if_stale(out, {**fp, "clip_fps": 10.0})
    assert sorted(p.name for p in out.iterdir()) == ["demo_setup.json", "notes"]
    assert "made by a different demo setup" in capsys.readouterr().out
    assert json.loads((out / "demo_setup.json").read_text())["clip_fps"] == 10.0
    assert fp["clip_fps"] == 4.0 and fp["preset"]["init_std"] == 0.08


def test_option_text_accuracy_reads_the_text_before_the_letter(tmp_path: Path) -> None:
    """Hand-made records: the text before " (<letter>)" must equal the true option's text; the letter itself
    is not looked at (a seen-but-unbound answer counts), test-split records (answer None) are left out."""
    from vpbench.errors import DataError
    from vpbench.synth.tiny_setup import option_text_accuracy

    opts = ["A. It grows", "B. It spins in place", "C. It bounces up and down"]
    rows = [("B", "It spins in place (B)"),       # text and letter right
            ("B", "It spins in place (A)"),       # text right, letter wrong: counts
            ("A", "It spins in place (A)"),       # letter right, text wrong: does not count
            ("C", "It bounces up and down"),      # no letter: the text is the whole response
            ("A", "C"),                           # a bare letter names no text
            (None, "It grows (A)")]               # hidden test answer: left out
    (tmp_path / "motionbench").mkdir()
    (tmp_path / "motionbench" / "records.jsonl").write_text(
        "".join(json.dumps({"answer": a, "options": opts, "response": r}) + "\n" for a, r in rows))
    assert option_text_accuracy(tmp_path) == (3 / 5, 5)
    with pytest.raises(DataError, match="vpbench run"):
        option_text_accuracy(tmp_path / "missing")
    bad = tmp_path / "bad"
    (bad / "motionbench").mkdir(parents=True)
    for rows_, why in (([{"answer": None, "options": opts, "response": "B"}], "no dev records"),
                       ([{"answer": "D", "options": opts, "response": "D"}], r"records.jsonl:1: options")):
        (bad / "motionbench" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_))
        with pytest.raises(DataError, match=why):
            option_text_accuracy(bad)


def test_demo_step_with_a_log_fails_naming_it_and_showing_its_output(tmp_path: Path, capsys) -> None:
    """The demo's side-by-side steps write their output to a log: a failing one stops the demo naming the
    command and the log, and prints the log's end (the error is not hidden in a file)."""
    from vpbench.synth.tiny_demo import _side_by_side, _vpbench

    log = tmp_path / "logs" / "bad.log"
    with pytest.raises(SystemExit, match=r"`vpbench tasks --no-such-option` failed with exit code 2 \(output: .*bad\.log\)"):
        _side_by_side([lambda: None, lambda: _vpbench("tasks", "--no-such-option", log=log)])
    assert "--no-such-option" in log.read_text()
    assert "--no-such-option" in capsys.readouterr().err
    assert _side_by_side([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
    # the first failure stops what has not started: the running call ends, the queued third one never runs
    import threading
    import time

    ran: list[str] = []
    started = threading.Event()

    def fail() -> None:
        started.wait(5)
        raise SystemExit("first fails")

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        ran.append("slow")

    with pytest.raises(SystemExit, match="first fails"):
        _side_by_side([fail, slow, lambda: ran.append("third")])
    assert ran == ["slow"]
