"""`vpbench reproduce`: plans on a fresh checkout, Table 1 at tiny scale end to end, a reduced
Table 5 grid trained and evaluated on CPU (the full grid behind `-m slow`), resumability by
fingerprint, missing recipes and failed steps as missing cells, paper scale printed without GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vpbench import cli
from vpbench.errors import ConfigError
from vpbench.reports import reproduce as rp
from vpbench.reports.grid import load_grid
from vpbench.reports.plan import grid_plan
from vpbench.reports.spec import get_spec, reports_dir



def _grid(tmp: Path, name: str, **body) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


SFT = {"name": "sft", "recipe": "sft_contrastive", "config": "recipes/configs/sft_contrastive/tiny.yaml",
       "launch": ["vpbench", "train", "sft"], "args": ["--prepare-tiny"],
       "set": {"model.path": "{base}", "data.manifest": "{root}/train_data/manifest.jsonl",
               "train.output_dir": "{out}", "train.seed": "{seed}", "train.max_steps": 1, "train.save_every": 1,
               "train.batch_size": 1, "train.grad_accum": 1, "model.gradient_checkpointing": False}}


def test_table1_plan_on_a_fresh_checkout_lists_missing_runs_and_commands(tmp_path, capsys):
    assert cli.main(["reproduce", "table1", "--plan", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "table1 (tiny scale): 4 steps — 0 done, 4 to run, 0 cannot run here" in out
    data = tmp_path / "runs" / "data"
    assert f"vpbench synth motionbench --output {data / 'motionbench'} --seed 0" in out
    assert f"vpbench run --model dummy:first --tasks motionbench --data-root {data} --output" in out
    assert "[to run] model/tiny" in out and "tiny_random: tiny random Qwen2.5-VL" in out
    assert not (tmp_path / "runs").exists()  # a plan makes nothing


def test_table1_tiny_renders_beside_the_paper_and_reruns_nothing(tmp_path, capsys):
    """Generated data, dummy:first beside the paper's Random row and the tiny random Qwen2.5-VL."""
    cfg = _grid(tmp_path, "models", scale="tiny", data={"synth": True}, torch_threads=1,
                eval_args=["--batch-size", "8"],
                models=[{"key": "dummy_first", "model": "dummy:first", "paper_rows": {"table1": "Random"}},
                        {"key": "tiny_random", "model": "@tiny"}])
    argv = ["reproduce", "table1", "--config", str(cfg), "--runs", str(tmp_path / "runs")]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert "table1: 4 steps run, 0 reused, 0 failed" in first  # data, dummy eval, tiny model, tiny eval
    reports = tmp_path / "runs" / "reports"
    cells = pd.read_csv(reports / "table1.csv", float_precision="round_trip")
    run = next(p for p in (tmp_path / "runs" / "table1" / "dummy_first").glob("eval-*") if p.is_dir())
    dev = next(m for m in json.loads((run / "results.json").read_text())["results"]["motionbench"]["metrics"]
               if m["name"] == "Dev-AVG")
    mine = cells[(cells["row"] == "dummy_first") & (cells["column"] == "Dev AVG")].iloc[0]
    assert mine["ours"] == dev["value"] and mine["paper"] == 0.25 and mine["delta"] == dev["value"] - 0.25
    assert mine["label"] == "Random" and mine["run_ids"] == str(run.relative_to(tmp_path / "runs"))
    md = (reports / "table1.md").read_text()
    assert "| VideoPerceiver-7B " in md and "| GPT-4o [48] " in md and "dummy_first" in md
    tiny = next(p for p in (tmp_path / "runs" / "table1" / "tiny_random").glob("eval-*") if p.is_dir())
    tiny_dev = next(m for m in json.loads((tiny / "results.json").read_text())["results"]["motionbench"]["metrics"]
                    if m["name"] == "Dev-AVG")
    row = cells[(cells["row"] == "tiny_random") & (cells["column"] == "Dev AVG")].iloc[0]
    assert row["ours"] == tiny_dev["value"] and tiny_dev["n"] == 14  # the 14 scorable dev questions
    assert row["run_ids"] == str(tiny.relative_to(tmp_path / "runs")) and row["paper"] != row["paper"]  # no paper row
    line = next(ln for ln in md.splitlines() if "tiny_random" in ln)
    assert line.count("—") == 1 and "unavailable: test answers are hidden" in line  # only Test AVG, saying why
    assert {p.name for p in reports.iterdir()} == {"table1.csv", "table1.md", "table1.tex",
                                                   "table1.provenance.json", "table1_bars1.png"}
    assert cli.main(argv) == 0
    assert "table1: 0 steps run, 4 reused, 0 failed" in capsys.readouterr().out


def test_table5_reduced_grid_trains_evaluates_renders_and_reruns_nothing(tmp_path, motionbench_with_videos, capsys):
    """Two variants of stage 1 (full, B: no contrastive loss) trained for one step from the tiny
    model, evaluated on 5 MotionBench questions; Ablation C's stage is absent → a missing row."""
    data = motionbench_with_videos.parent
    grid = _grid(tmp_path, "t5", table="table5", scale="tiny", base_model="@tiny", data={"root": str(data)},
                 torch_threads=1, stages=[SFT],
                 eval={"tasks": ["motionbench"], "args": ["--batch-size", "5", "--set", "stats.n_boot=100"]},
                 variants=[{"key": "full", "paper_row": "VideoPerceiver-7B", "baseline": True},
                           {"key": "B", "paper_row": "Ablation B", "set": {"sft": {"contrastive.enabled": False}}},
                           {"key": "C", "paper_row": "Ablation C", "missing": "stage 2 is not in this grid"}])
    argv = ["reproduce", "table5", "--config", str(grid), "--runs", str(tmp_path / "runs"), "--n-boot", "200"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "table5: 5 steps run, 0 reused, 0 failed" in out  # tiny model, 2 trainings, 2 evaluations
    reports = tmp_path / "runs" / "reports"
    assert {p.suffix for p in reports.iterdir()} == {".csv", ".md", ".tex", ".json", ".png"}
    cells = pd.read_csv(reports / "table5.csv", float_precision="round_trip").set_index(["row", "column"])
    for key in ("full", "B"):
        run = next(p for p in (tmp_path / "runs" / "table5" / key / "seed0").glob("eval-*") if p.is_dir())
        res = json.loads((run / "results.json").read_text())
        dev = next(m["value"] for m in res["results"]["motionbench"]["metrics"] if m["name"] == "Dev-AVG")
        assert cells.loc[(key, "Motionbench"), "ours"] == dev
        training = res["manifest"]["model"]["training"]  # the eval names the recipe and config behind it
        assert training["recipe"] == "recipes/sft_contrastive.py"
        assert training["config"]["contrastive"]["enabled"] is (key == "full")
    assert cells.loc[("B", "VRUACC"), "note"] == "not run: vru_accident_vqa"
    assert cells.loc[("C", "Motionbench"), "note"] == "missing: stage 2 is not in this grid"
    assert cells.loc[("B", "Motionbench"), "paired_n"] == 4  # paired Δ vs full over the 4 scorable questions
    assert cells.loc[("B", "Motionbench"), "paired_ci_low"] <= cells.loc[("B", "Motionbench"), "paired_delta"]
    assert "Motionbench Δ vs base" in (reports / "table5.md").read_text()
    assert cli.main(argv) == 0
    assert "table5: 0 steps run, 5 reused, 0 failed" in capsys.readouterr().out


def test_missing_recipe_and_failed_step_are_missing_cells_not_crashes(tmp_path, capsys):
    stage = {**SFT, "set": {**SFT["set"], "no_such_section.key": 1}}
    grid = _grid(tmp_path, "t5", table="table5", scale="tiny", base_model=str(tmp_path / "no-model"),
                 data={"root": str(tmp_path)}, stages=[stage], eval={"tasks": ["motionbench"]},
                 variants=[{"key": "full", "paper_row": "VideoPerceiver-7B", "baseline": True}])
    assert cli.main(["reproduce", "table5", "--config", str(grid), "--runs", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert "table5: 0 steps run, 0 reused, 1 failed" in out
    note = pd.read_csv(tmp_path / "runs" / "reports" / "table5.csv").set_index(["row", "column"]).loc[
        ("full", "Motionbench"), "note"]
    assert note.startswith("failed: step table5/full/seed0/sft exited 2 (log: ")
    gone = {**SFT, "recipe": "no_such_recipe"}
    grid = _grid(tmp_path, "t5b", table="table5", scale="tiny", data={"synth": True}, stages=[gone],
                 eval={"tasks": ["motionbench"]}, variants=[{"key": "full", "paper_row": "VideoPerceiver-7B"}])
    assert cli.main(["reproduce", "table5", "--config", str(grid), "--runs", str(tmp_path / "runs2")]) == 0
    assert "table5: 0 steps run, 0 reused, 0 failed" in capsys.readouterr().out  # nothing is made for it
    cells = pd.read_csv(tmp_path / "runs2" / "reports" / "table5.csv").set_index(["row", "column"])
    assert cells.loc[("full", "VRU"), "note"] == \
        "missing: recipe recipes/no_such_recipe.py (stage 'sft') is not in this checkout"


def test_fingerprints_decide_reuse_and_seeds_multiply_runs(tmp_path):
    spec = get_spec("table5")
    path = reports_dir() / "grids" / "table5_tiny_stage1.yaml"
    grid = load_grid(path)
    plan = grid_plan(spec, grid, tmp_path, gpu=False)
    sft = plan.step("table5/full-s1/seed0/sft")
    assert "data.scorer=random" in plan.step("table5/A-s1/seed0/sft").command
    sft.output.mkdir(parents=True)
    (sft.output / "reproduce.json").write_text(json.dumps({"fingerprint": "something else"}))
    assert not sft.done()
    (sft.output / "reproduce.json").write_text(json.dumps({"fingerprint": sft.fingerprint}))
    assert sft.done()
    changed = grid_plan(spec, load_grid(_grid(tmp_path, "g", **{**yaml.safe_load(path.read_text()),
                        "eval": {"tasks": ["motionbench"], "args": ["--set", "protocol.fps=2"]}})),
                        tmp_path, gpu=False)
    assert changed.step("table5/full-s1/seed0/sft").fingerprint == sft.fingerprint  # training unchanged
    assert changed.step("table5/full-s1/seed0/eval").output != plan.step("table5/full-s1/seed0/eval").output
    two = grid_plan(spec, grid, tmp_path, gpu=False, seeds=2)
    assert two.evals["full-s1"] == ("table5/full-s1/seed0/eval", "table5/full-s1/seed1/eval")
    assert two.step("table5/full-s1/seed1/sft").fingerprint != sft.fingerprint
    assert "train.seed=1" in two.step("table5/full-s1/seed1/sft").command


def test_paper_scale_prints_multi_gpu_commands_without_gpus(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rp, "_gpu", lambda: False)
    assert cli.main(["reproduce", "table5", "--scale", "paper", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "no GPU here: paper scale is printed, not run" in out
    assert ("accelerate launch --config_file recipes/configs/accelerate/deepspeed_zero2.yaml --num_processes 8 "
            "recipes/sft_contrastive.py --config ") in out
    assert "--device cuda --batch-size 8" in out
    assert not (tmp_path / "runs").exists()
    assert cli.main(["reproduce", "table5", "--scale", "paper", "--config",
                     str(reports_dir() / "grids" / "table5_tiny.yaml")]) == 2
    assert "is a tiny-scale config but --scale paper was given" in capsys.readouterr().err


def test_table6_tiny_grid_plans_block_and_frame_rate_rows_beside_the_paper(tmp_path, capsys):
    """Table 6's tiny grid as planned: each variant trains and evaluates at its own block / frame rate,
    sits beside its paper row, and the rows it cannot make say why."""
    spec = get_spec("table6")
    plan = grid_plan(spec, load_grid(reports_dir() / "grids" / "table6_tiny.yaml"), tmp_path, gpu=False)
    rows = {r.key: r for r in plan.rows}
    assert rows["block2"].baseline and not rows["fps10"].baseline
    assert "contrastive.blocks=[1, 2, 3]" in plan.step("table6/blocks1-3/seed0/sft").command
    fps10_sft, fps10_eval = plan.step("table6/fps10/seed0/sft"), plan.step("table6/fps10/seed0/eval")
    assert "--set data.fps=10.0" in fps10_sft.command and "data.key_frames=scorer" in fps10_sft.command
    assert fps10_eval.argv[-2:] == ("--set", "motionbench.protocol.fps=10.0")  # after the grid's fps=5.0
    assert rows["fps20"].reason == "missing: 4 fps maps to 20 fps, above the generated clips' 10 fps"
    assert set(plan.evals) == {"block2", "block1", "block3", "blocks1-3", "fps1.25", "fps2.5", "fps10"}
    assert cli.main(["reproduce", "table6", "--scale", "tiny", "--plan", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "table6 (tiny scale): 17 steps — 0 done, 17 to run, 0 cannot run here" in out
    assert "  fps5: 5 fps (1fps) — missing: the same training and evaluation as row block2" in out


def test_tiny_grids_switch_their_stage1_config_with_one_line(tmp_path):
    """The tiny grids train stage 1 with their own fast config; pointing the one `config:` line at the
    config meant to learn (tiny_learn.yaml: same model preset, data and sampling) is the whole switch."""
    spec = get_spec("table5")
    text = (reports_dir() / "grids" / "table5_tiny.yaml").read_text()
    line = "    config: reports/configs/train/sft_contrastive_tiny_grid.yaml\n"
    assert text.count(line) == 1
    switched = tmp_path / "t5.yaml"
    switched.write_text(text.replace(line, "    config: recipes/configs/sft_contrastive/tiny_learn.yaml\n"))
    fast = grid_plan(spec, load_grid(reports_dir() / "grids" / "table5_tiny.yaml"), tmp_path, gpu=False)
    learn = grid_plan(spec, load_grid(switched), tmp_path, gpu=False)
    sft = learn.step("table5/full/seed0/sft")
    assert sft.argv[:5] == ("vpbench", "train", "sft", "--config",
                            str(reports_dir().parent / "recipes/configs/sft_contrastive/tiny_learn.yaml"))
    assert not learn.blocked_by(sft) and sft.fingerprint != fast.step("table5/full/seed0/sft").fingerprint
    assert learn.step("table5/full/seed0/grpo").needs == (sft.id, "train_data")  # stage 2 follows the new stage 1


@pytest.mark.slow
@pytest.mark.parametrize("table", ["table5", "table6"])
def test_full_tiny_grid_end_to_end(table, tmp_path, capsys):
    """The full tiny grid on CPU (minutes): every runnable variant trained and evaluated on generated
    data (Table 5: MotionBench, VRU-Accident VQA and captions; Table 6: MotionBench), rendered with
    paired Δ CIs against the baseline row; a second invocation reruns nothing."""
    argv = ["reproduce", table, "--scale", "tiny", "--runs", str(tmp_path)]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    n_steps = {"table5": 16, "table6": 17}[table]
    assert f"{table}: {n_steps} steps run, 0 reused, 0 failed;" in first
    reports = tmp_path / "reports"
    for ext in ("csv", "md", "tex", "provenance.json"):
        assert (reports / f"{table}.{ext}").is_file()
    assert list(reports.glob(f"{table}_*.png"))
    cells = pd.read_csv(reports / f"{table}.csv", float_precision="round_trip").set_index(["row", "column"])
    base = "full" if table == "table5" else "block2"
    others = ("A", "B", "C") if table == "table5" else ("block1", "block3", "blocks1-3", "fps1.25", "fps2.5", "fps10")
    for col in get_spec(table).columns:
        if table == "table6" and col.label != "Dev AVG":
            continue
        assert pd.notna(cells.loc[(base, col.label), "ours"])
        for key in others:  # each ablation: our value and a paired Δ CI against the baseline row
            row = cells.loc[(key, col.label)]
            assert pd.notna(row["ours"]) and row["paired_ci_low"] <= row["paired_delta"] <= row["paired_ci_high"]
    missing = "D" if table == "table5" else "fps20"
    col0 = get_spec(table).columns[0].label
    assert cells.loc[(missing, col0), "note"].startswith("missing: ")
    assert cli.main(argv) == 0
    assert f"{table}: 0 steps run, {n_steps} reused, 0 failed;" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ({"torch_threads": -1}, "grid table5: torch_threads must be >= 0, got -1"),
    ({"base_model": "@tiny:huge"}, "base_model '@tiny:huge': use @tiny, @tiny:micro or @tiny:small"),
    ({"train_data": {"synth": "mvbench"}}, "train_data.synth: only 'motionbench' has a training split generator"),
    ({"train_data": {"synth": "motionbench", "n_video": 3}}, "train_data (did you mean 'n_videos'?)"),
])
def test_grid_config_errors_name_the_key(tmp_path, change, message):
    body = {**yaml.safe_load((reports_dir() / "grids" / "table5_tiny.yaml").read_text()), **change}
    with pytest.raises(ConfigError) as err:
        load_grid(_grid(tmp_path, "bad", **body))
    assert message in str(err.value)
