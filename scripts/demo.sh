#!/usr/bin/env bash
# README command 1: install, then run the main job offline on bundled (generated) data:
# a tiny random Qwen2.5-VL checkpoint through the real `hf` backend on generated MotionBench data.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
bash scripts/install.sh
OUT="${VPBENCH_DEMO_DIR:-demo}"
.venv/bin/vpbench synth motionbench --output "$OUT/data/motionbench" --seed 0
.venv/bin/vpbench model tiny --output "$OUT/tiny-qwen2.5-vl" --seed 0
.venv/bin/vpbench run --model "$OUT/tiny-qwen2.5-vl" --tasks motionbench \
  --data-root "$OUT/data/motionbench" --output "$OUT/runs/tiny" --batch-size 4 --device cpu \
  --frame-cache "$OUT/frame-cache"
