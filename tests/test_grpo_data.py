"""The RL manifest reader and the recipe's user-facing errors (file, record and fix; exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpbench.errors import ConfigError, DataError
from vpbench.train.rl_data import read_rl_manifest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"id": "a/q0", "video": "clips/a.mp4", "start": None, "end": None, "prompt": "How many?", "answer": "3",
        "answer_type": "number", "keywords": ["bounce"], "key_frames": [2, 4]}


def _write(tmp_path: Path, *rows) -> Path:
    p = tmp_path / "rl.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_reads_the_craft_schema(tmp_path: Path) -> None:
    (ex,) = read_rl_manifest(_write(tmp_path, GOOD))
    assert (ex.id, ex.answer_type, ex.key_frames, ex.keywords) == ("a/q0", "number", (2, 4), ("bounce",))
    assert ex.video == str(tmp_path / "clips" / "a.mp4")  # relative to the manifest's dir


@pytest.mark.parametrize("row, message", [
    ({**GOOD, "answr": "3"}, r"rl.jsonl:1 \(id 'a/q0'\): unknown key 'answr' \(did you mean 'answer'\?\)"),
    ({**GOOD, "answer_type": "mcq"}, "'answer_type' must be one of"),
    ({k: v for k, v in GOOD.items() if k != "prompt"}, "missing required key 'prompt'"),
    ({**GOOD, "key_frames": [-1]}, "'key_frames' must be a list of frame indices"),
])
def test_bad_records_name_file_line_and_fix(tmp_path: Path, row: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as e:
        read_rl_manifest(_write(tmp_path, row))
    assert "fix the RL manifest" in str(e.value)


def test_duplicate_ids_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"rl.jsonl:2 \(id 'a/q0'\): duplicate id \(first on line 1\)"):
        read_rl_manifest(_write(tmp_path, GOOD, GOOD))
    with pytest.raises(DataError, match="vpbench data craft"):
        read_rl_manifest(tmp_path / "nope.jsonl")


def test_config_typos_are_errors() -> None:
    from vpbench.train.grpo_config import load_grpo_config

    with pytest.raises(ConfigError, match="did you mean 'lambda_c'"):
        load_grpo_config(None, {"grpo.lamda_c": "0"})
    with pytest.raises(ConfigError, match="grpo.refeed needs grpo.comparator=comparative"):
        load_grpo_config(None, {"grpo.comparator": "tgrpo"})
    cfg = load_grpo_config(None, {"grpo.comparator": "tgrpo", "grpo.refeed": "false"})
    assert cfg.grpo.comparator == "tgrpo"


def test_vpbench_train_grpo_reports_a_bad_manifest_without_traceback(tmp_path: Path, capsys) -> None:
    bad = _write(tmp_path, {**GOOD, "answr": "3"})
    proc = subprocess.run([sys.executable, "-m", "vpbench", "train", "grpo", "--config",
                           str(ROOT / "recipes/configs/grpo_comparative/tiny.yaml"), "--set", f"data.manifest={bad}",
                           "--set", f"model.path={tmp_path}", "--set", f"train.output_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "grpo_comparative: error:" in proc.stderr and "unknown key 'answr' (did you mean 'answer'?)" in proc.stderr
    import importlib.util

    spec = importlib.util.spec_from_file_location("grpo_recipe_errors", ROOT / "recipes/grpo_comparative.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    assert recipe.main(["--config", str(ROOT / "recipes/configs/grpo_comparative/tiny.yaml"),
                        f"data.manifest={_write(tmp_path, GOOD)}", f"model.path={tmp_path}"]) == 2
    assert "is not a Qwen2.5-VL checkpoint dir (no config.json)" in capsys.readouterr().err
