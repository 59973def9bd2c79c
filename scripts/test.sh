#!/usr/bin/env bash
# README command 2: install, then run the default test suite (CUDA checks are opt-in:
# `.venv/bin/pytest -m gpu`; `-m slow` for checks that outgrow the default budget).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
bash scripts/install.sh
.venv/bin/python -m pytest -q "$@"
