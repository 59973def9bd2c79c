"""The data-craft manifests feed the stage-1 recipe without conversion: generated MotionBench data →
`vpbench data craft` (protocol set to the recipe's sampling) → `recipes/sft_contrastive.py` steps."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTOCOL = ["protocol.fps=4", "protocol.max_frames=16", "protocol.min_pixels=3136", "protocol.max_pixels=3136"]


def test_crafted_sft_manifest_trains_the_tiny_recipe(tmp_path, monkeypatch):
    from vpbench import cli
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench
    from vpbench.train.config import load_config

    monkeypatch.chdir(tmp_path)
    synth_motionbench(tmp_path / "runs/synth/motionbench", seed=0, n_videos=4)
    sets = [a for p in PROTOCOL for a in ("--set", p)]
    assert cli.main(["data", "craft", "--config", str(REPO / "recipes/configs/craft/synthetic.yaml"), *sets]) == 0
    manifest = tmp_path / "runs/craft/synthetic/sft.jsonl"
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert lines and all(0 <= k < ln["n_frames"] for ln in lines for k in ln["key_frames"])

    import importlib.util

    spec = importlib.util.spec_from_file_location("sft_recipe", REPO / "recipes/sft_contrastive.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    model = build_tiny_qwen(tmp_path / "tiny")
    cfg = load_config(REPO / "recipes/configs/sft_contrastive/tiny.yaml", {
        "model.path": str(model), "data.manifest": str(manifest), "data.key_frames": "manifest",
        "train.output_dir": str(tmp_path / "out"), "train.max_steps": "2", "train.save_every": "2"})
    recipe.run(cfg)
    logged = [json.loads(x) for x in (tmp_path / "out/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2]
    assert all(r["t2v"] > 0 and r["sft"] > 0 for r in logged)
    assert (tmp_path / "out/export/model.safetensors").exists()
