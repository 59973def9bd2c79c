"""GPU checks of stage 2 (opt-in: ``pytest -m gpu`` on a CUDA machine with the extras installed).

* vLLM rollouts (``pip install 'vpbench[vllm]'``): the colocated engine generates G completions
  for a tiny-model prompt + clip, and ``sync`` pushes the policy's weights: after a change of the
  policy, the engine's near-greedy output follows the policy's own greedy ``generate``.
* The tiny recipe for 2 steps on CUDA (hf rollouts), and under DeepSpeed ZeRO-3 (``[deepspeed]``),
  one process: rollouts gather the sharded parameters, the run finishes and exports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vpbench.craft.pipeline import load_craft_config, run_craft
    from vpbench.models.tiny_qwen import build_tiny_qwen
    from vpbench.synth.motionbench import synth_motionbench
    from vpbench.train.nli import build_tiny_nli

    base = tmp_path_factory.mktemp("grpo_gpu")
    synth_motionbench(base / "mb", seed=0, n_videos=3)
    run_craft(load_craft_config(ROOT / "recipes/configs/craft/synthetic.yaml", {
        "input.root": str(base / "mb"), "output.dir": str(base / "craft"), "protocol.fps": "4",
        "protocol.max_frames": "16", "protocol.min_pixels": "3136", "protocol.max_pixels": "3136"}))
    return {"base": base, "model": build_tiny_qwen(base / "model", seed=0), "manifest": base / "craft" / "rl.jsonl",
            "nli": build_tiny_nli(base / "nli")}


def _overrides(env, out: str, **extra) -> list[str]:
    o = {"model.path": env["model"], "data.manifest": env["manifest"], "quality.nli_model": env["nli"],
         "train.output_dir": env["base"] / out, "train.max_steps": 2, "train.save_every": 0, **extra}
    return [f"{k}={v}" for k, v in o.items()]


def test_vllm_rollout_generates_and_syncs(setup):
    pytest.importorskip("vllm")
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from vpbench.train.grpo_config import load_grpo_config
    from vpbench.train.rl_data import RLDataset, read_rl_manifest
    from vpbench.train.rollouts import HFRollout, VLLMRollout

    cfg = load_grpo_config(ROOT / "recipes/configs/grpo_comparative/tiny.yaml", {"model.path": str(setup["model"])})
    tok = AutoTokenizer.from_pretrained(setup["model"])
    ds = RLDataset(read_rl_manifest(setup["manifest"]), cfg.data, setup["model"], tok, "Re-answer.")
    prep = ds[0]
    policy = Qwen2_5_VLForConditionalGeneration.from_pretrained(setup["model"]).cuda()
    v = VLLMRollout(str(setup["model"]), tok, policy.config.video_token_id, max_new_tokens=8, temperature=1e-5,
                    gpu_memory_utilization=0.2, max_model_len=2048, mm_processor_kwargs={"min_pixels": 3136,
                                                                                         "max_pixels": 3136})
    out = v.generate(prep.prompt_ids, prep.full, 4, seed=0)
    assert len(out) == 4 and all(1 <= len(c) <= 8 for c in out)
    with torch.no_grad():  # make one token overwhelmingly likely, push the weights, expect it from vLLM
        target = tok.convert_tokens_to_ids("B")
        policy.lm_head.weight.zero_()
        policy.lm_head.weight[target] = 1.0
        policy.model.language_model.norm.weight.fill_(50.0)
    v.sync(policy)
    hf = HFRollout(policy, (tok.convert_tokens_to_ids("<|im_end|>"),), 0, 8, temperature=1e-5)
    assert v.generate(prep.prompt_ids, prep.full, 2, seed=1)[0] == hf.generate(prep.prompt_ids, prep.full, 1, 1)[0]


def test_tiny_recipe_on_cuda(setup):
    rc = subprocess.run([sys.executable, str(ROOT / "recipes/grpo_comparative.py"), "--config",
                         str(ROOT / "recipes/configs/grpo_comparative/tiny.yaml"), *_overrides(setup, "cuda")],
                        capture_output=True, text=True, timeout=900)
    assert rc.returncode == 0, rc.stderr[-3000:]
    rows = [json.loads(x) for x in (setup["base"] / "cuda" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert (setup["base"] / "cuda" / "export" / "model.safetensors").is_file()


def test_tiny_recipe_under_deepspeed_zero3(setup, tmp_path):
    pytest.importorskip("deepspeed")
    import yaml

    acc = yaml.safe_load((ROOT / "recipes/configs/accelerate/deepspeed_zero3.yaml").read_text())
    acc.update(num_processes=1, mixed_precision="no")
    acc["deepspeed_config"]["gradient_accumulation_steps"] = 2
    cfg = tmp_path / "zero3_1gpu.yaml"
    cfg.write_text(yaml.safe_dump(acc))
    env = {**os.environ, "MASTER_PORT": "29533"}
    rc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg),
                         str(ROOT / "recipes/grpo_comparative.py"), "--config",
                         str(ROOT / "recipes/configs/grpo_comparative/tiny.yaml"), *_overrides(setup, "zero3")],
                        capture_output=True, text=True, timeout=900, env=env)
    assert rc.returncode == 0, rc.stderr[-3000:]
    assert (setup["base"] / "zero3" / "export" / "model.safetensors").is_file()
