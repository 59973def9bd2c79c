"""Tidy loader and table functions on fixed run directories (replay runs with hand-computed scores),
and every table spec as a pure function of a tidy frame with exact values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpbench import cli
from vpbench.errors import DataError
from vpbench.reports.cells import build_cells, paired_deltas
from vpbench.reports.export import display_frame, merge_paired, to_latex, write_report
from vpbench.reports.spec import RowSpec, load_paper, load_specs, match_paper_row
from vpbench.reports.tidy import TIDY_COLUMNS, load_metrics, load_scores

# by hand (official parser, qa5 has a hidden answer):
#   A: qa1 B=B ✓, qa2_1 B≠A ✗, qa3 C=C ✓, qa4 A=A ✓ → Dev-AVG 3/4; RC (qa1, qa2_1) 1/2, CM 1, AO 1
#   B: qa1 ✓, qa2_1 A=A ✓, qa3 '' unparsed ✗, qa4 B≠A ✗ → Dev-AVG 2/4; RC 1, CM 0, AO 0
RUN_A = {"qa1": "B", "qa2_1": "B", "qa3": "C", "qa4": "A", "qa5": "C"}
RUN_B = {"qa1": "B", "qa2_1": "A", "qa3": "", "qa4": "B", "qa5": "C"}


def replay_run(tmp: Path, data: Path, name: str, answers: dict[str, str], *extra: str,
               marker: dict | None = None) -> Path:
    preds = tmp / f"{name}.jsonl"
    preds.write_text("".join(json.dumps({"sample_id": k, "response": v}) + "\n" for k, v in answers.items()))
    out = tmp / "runs" / name
    assert cli.main(["run", "--model", f"replay:{preds}", "--tasks", "motionbench", "--data-root", str(data),
                     "--output", str(out), "--no-cache", "--set", "stats.n_boot=200", *extra]) == 0
    if marker is not None:
        (out / "reproduce.json").write_text(json.dumps(marker))
    return out


@pytest.fixture
def runs(tmp_path, motionbench_root):
    return {"A": replay_run(tmp_path, motionbench_root, "A", RUN_A, marker={"row": "A", "seed": 0, "ablation_id": "A"}),
            "B": replay_run(tmp_path, motionbench_root, "B", RUN_B, marker={"row": "B", "seed": 0, "ablation_id": "B"})}


def test_tidy_rows_exact(runs, tmp_path):
    t = load_metrics([runs["A"], runs["B"]], root=tmp_path / "runs")
    assert list(t.columns) == list(TIDY_COLUMNS)
    top = t[(t["group"] == "") & (t["metric"] == "Dev-AVG")].set_index("run_id")
    assert top.loc["A", "value"] == 0.75 and top.loc["B", "value"] == 0.5
    assert top.loc["A", "n"] == 4 and top.loc["A", "n_clusters"] == 3 and top.loc["A", "n_total"] == 5
    assert top.loc["B", "n_unparsed"] == 1 and top.loc["A", "n_unparsed"] == 0 and top.loc["B", "n_failed"] == 0
    assert top.loc["A", "coverage"] == 1.0 and not top.loc["A", "partial"]
    assert top.loc["A", "parser"].startswith("official@") and top.loc["A", "model_spec"].startswith("replay:")
    assert top.loc["A", "row_key"] == "A" and top.loc["A", "seed"] == 0 and top.loc["A", "ablation_id"] == "A"
    assert top.loc["A", "protocol_fingerprint"] == top.loc["B", "protocol_fingerprint"] != ""
    assert top.loc["A", "sample_set_hash"] == top.loc["B", "sample_set_hash"] != ""
    assert top.loc["A", "recipe"] == "" and top.loc["A", "config_hash"] == ""  # not a recipe checkpoint
    assert top.loc["A", "ci_low"] <= 0.75 <= top.loc["A", "ci_high"]
    cats = t[(t["run_id"] == "A") & (t["group"] == "question_type (dev)")].set_index("metric")["value"].to_dict()
    assert cats == {"CM": 1.0, "AO": 1.0, "RC": 0.5}
    cats_b = t[(t["run_id"] == "B") & (t["group"] == "question_type (dev)")].set_index("metric")["value"].to_dict()
    assert cats_b == {"CM": 0.0, "AO": 0.0, "RC": 1.0}
    scores = load_scores([runs["A"]], ["motionbench"], root=tmp_path / "runs")
    acc = scores[scores["score"] == "acc"].set_index("sample_id")["value"].to_dict()
    assert acc == {"qa1": 1.0, "qa2_1": 0.0, "qa3": 1.0, "qa4": 1.0}  # qa5: hidden answer, no score


def test_tidy_refuses_non_runs_with_the_fix(tmp_path):
    with pytest.raises(DataError, match="not a finished vpbench run"):
        load_metrics([tmp_path])


def test_table1_cells_exact(runs, tmp_path):
    spec = load_specs()["table1"]
    paper = load_paper(spec)
    t = load_metrics([runs["A"], runs["B"]], root=tmp_path / "runs")
    qwen7 = match_paper_row(spec, paper, "Qwen2.5-VL-7B [4]", "test")
    rows = [RowSpec("A", "run A", qwen7), RowSpec("B", "run B"), RowSpec("C", "never run")]
    cells = build_cells(spec, t, rows, paper).set_index(["row", "column"])
    a = cells.loc[("A", "Dev AVG")]
    assert a["ours"] == 0.75 and a["paper"] == 0.54 and a["delta"] == 0.75 - 0.54 and a["label"] == "Qwen2.5-VL-7B [4]"
    assert cells.loc[("A", "RC"), "ours"] == 0.5 and cells.loc[("A", "RC"), "paper"] == 0.35
    assert cells.loc[("A", "Test AVG"), "note"].startswith("unavailable: test answers are hidden")
    assert math.isnan(cells.loc[("B", "Dev AVG"), "paper"]) and cells.loc[("B", "Dev AVG"), "ours"] == 0.5
    assert cells.loc[("C", "MR"), "note"] == "not run"
    assert cells.loc[("paper:0", "Dev AVG"), "paper"] == 0.25  # the paper's Random row, ours empty
    assert len(cells) == (len(paper) + 2) * len(spec.columns)
    # the paper row A sits beside keeps its place; unmatched rows follow the paper's
    order = list(dict.fromkeys(c[0] for c in cells.index))
    assert order.index("A") == qwen7 and order[-2:] == ["B", "C"]


def test_partial_and_mixed_protocol_cells_say_why(tmp_path, motionbench_root):
    part = replay_run(tmp_path, motionbench_root, "P", RUN_A, "--limit", "2", marker={"row": "P", "seed": 0})
    s0 = replay_run(tmp_path, motionbench_root, "S0", RUN_A, marker={"row": "S", "seed": 0})
    s1 = replay_run(tmp_path, motionbench_root, "S1", RUN_B, "--set", "protocol.fps=2", marker={"row": "S", "seed": 1})
    spec = load_specs()["table1"]
    t = load_metrics([part, s0, s1], root=tmp_path / "runs")
    cells = build_cells(spec, t, [RowSpec("P", "P"), RowSpec("S", "S")], load_paper(spec)).set_index(["row", "column"])
    assert cells.loc[("P", "Dev AVG"), "note"] == "partial coverage 0.40 (2/5 samples; run P)"
    assert math.isnan(cells.loc[("P", "Dev AVG"), "ours"])
    assert cells.loc[("S", "Dev AVG"), "note"].startswith("different protocol or sample set across the row's runs")


def test_seeds_mean_and_spread(tmp_path, motionbench_root):
    s0 = replay_run(tmp_path, motionbench_root, "S0", RUN_A, marker={"row": "S", "seed": 0})
    s1 = replay_run(tmp_path, motionbench_root, "S1", RUN_B, marker={"row": "S", "seed": 1})
    spec = load_specs()["table5"]
    paper = load_paper(spec)
    t = load_metrics([s0, s1], root=tmp_path / "runs")
    cells = build_cells(spec, t, [RowSpec("S", "S", 0)], paper).set_index(["row", "column"])
    c = cells.loc[("S", "Motionbench")]
    assert c["ours"] == 0.625 and c["n_seeds"] == 2 and c["spread"] == pytest.approx(np.std([0.75, 0.5], ddof=1))
    assert math.isnan(c["ci_low"]) and c["delta"] == pytest.approx(0.625 - 0.69)
    assert cells.loc[("S", "VRUACC"), "note"] == "not run: vru_accident_vqa"


def test_paired_delta_against_baseline(runs, tmp_path):
    spec = load_specs()["table5"]
    rows = [RowSpec("A", "full", 0, baseline=True), RowSpec("B", "B", 2)]
    scores = load_scores([runs["A"], runs["B"]], spec.tasks, root=tmp_path / "runs")
    paired = paired_deltas(spec, scores, rows, n_boot=500, seed=0)
    assert list(paired["row"]) == ["B"] and list(paired["column"]) == ["Motionbench"]
    p = paired.iloc[0]
    assert p["delta"] == -0.25 and p["n"] == 4 and p["n_clusters"] == 3 and p["baseline"] == "A"
    # per-video Δ sums: vidA (qa1, qa2_1) +1 over 2 items, vidB −1, vidC −1: bounds are resample means
    assert -1.0 <= p["ci_low"] <= -0.25 <= p["ci_high"] <= 0.5


def _tidy_for(spec, value: float) -> pd.DataFrame:
    rows = [{c: None for c in TIDY_COLUMNS} | {
        "run_id": "r", "run_dir": "r", "row_key": "ours", "task": col.task, "group": col.group, "metric": col.metric,
        "value": value, "ci_low": value - 0.1, "ci_high": value + 0.1, "coverage": 1.0, "partial": False,
        "protocol_fingerprint": "p", "sample_set_hash": "s", "notes": "", "n_total": 10, "n_evaluated": 10}
        for col in spec.columns if not col.unavailable]
    return pd.DataFrame(rows, columns=list(TIDY_COLUMNS))


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "table4", "table5", "table6"])
def test_every_table_is_a_pure_function_of_the_tidy_frame(name, tmp_path):
    spec = load_specs()[name]
    paper = load_paper(spec)
    last = int(paper.index[-1])
    cells = build_cells(spec, _tidy_for(spec, 0.5), [RowSpec("ours", "ours", last)], paper)
    mine = cells[cells["row"] == "ours"].set_index("column")
    for col in spec.columns:
        k = spec.column_scale(col)
        c = mine.loc[col.label]
        if col.unavailable:
            assert c["note"].startswith("unavailable") and math.isnan(c["ours"])
            continue
        assert c["ours"] == 0.5 * k and c["ci_low"] == pytest.approx(0.4 * k) and c["paper"] == paper.loc[last, col.label]
        assert c["delta"] == (0.5 * k - paper.loc[last, col.label]) or math.isnan(c["paper"])
    paths = write_report(spec, merge_paired(cells, None), paper, tmp_path)
    back = pd.read_csv(tmp_path / f"{name}.csv")
    assert back.loc[back["row"] == "ours", "ours"].dropna().tolist() == mine["ours"].dropna().tolist()
    assert all(p.exists() for p in paths) and len(paths) == 4 + len(spec.plots)
    for png in (p for p in paths if p.suffix == ".png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latex_and_markdown_escape_and_show_both_numbers(tmp_path):
    spec = load_specs()["table2"]
    paper = load_paper(spec)
    cells = build_cells(spec, _tidy_for(spec, 0.5), [RowSpec("ours", "ours", None)], paper)
    display = display_frame(spec, merge_paired(cells, None), paper)
    tex = to_latex(spec, display)
    assert r"Weather \& Light paper" in tex and "Weather & Light" not in tex.replace(r"\&", "")
    ours = display[display["ours"] == "ours"].iloc[0]
    assert ours["Average ours"] == "50.0 [40.0, 60.0]" and ours["Model (Param.)"] == "ours"
    human = display[display["Model (Param.)"] == "Human Expert"].iloc[0]
    assert human["Average paper"] == "94.7"
    spec1 = load_specs()["table1"]
    p1 = load_paper(spec1)
    tex1 = to_latex(spec1, display_frame(spec1, merge_paired(build_cells(spec1, _tidy_for(spec1, 0.5), [], p1), None), p1))
    assert r"\# Frames" in tex1
