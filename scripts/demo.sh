#!/usr/bin/env bash
# README command 1: install, then run the main job offline on bundled (generated) data:
# generate a MotionBench-format training split and a held-out dev split, build the tiny Qwen2.5-VL,
# train it with the stage-1 recipe (SFT + intermediate-layer contrastive), and print chance,
# dummy:first, the untrained and the trained tiny model side by side (95% cluster-bootstrap CIs)
# plus the trained model's perception gap, all through the real `vpbench` CLI and `hf` backend.
# Running it again reuses the data, model, training and finished evaluations under $VPBENCH_DEMO_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
bash scripts/install.sh
.venv/bin/python -m vpbench.synth.tiny_demo --out "${VPBENCH_DEMO_DIR:-demo}" "$@"
