#!/usr/bin/env bash
# Create .venv and install vpbench with the verified pins. torch==2.13.0 goes first: a bare
# `torch` requirement with no torch installed would pull GBs of CUDA wheels.
# Usage: bash scripts/install.sh [EXTRAS]   (default extras: dev,captions,train)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev,captions,train}"
PY="${PYTHON:-python3}"

# System packages (Debian): Java for pycocoevalcap (METEOR-jar/SPICE/PTB), WordNet for NLTK METEOR.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  need=()
  command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
  [ -f /usr/share/wordnet/data.noun ] || need+=(wordnet-base wordnet-sense-index)
  if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[${EXTRAS}]"
echo "vpbench installed in $(pwd)/.venv"
