#!/usr/bin/env bash
# Create .venv and install vpbench with the verified pins. torch==2.13.0 goes first: a bare
# `torch` requirement with no torch installed would pull GBs of CUDA wheels.
# Usage: bash scripts/install.sh [EXTRAS]   (default extras: dev,captions,train)
# Installer output goes to .venv-install.log and is shown only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev,captions,train}"
PY="${PYTHON:-python3}"
LOG="$(pwd)/.venv-install.log"
: > "$LOG"

step() {  # step DESCRIPTION CMD...: run quietly, show the log tail and fail loudly on error
  local what="$1"; shift
  echo "install: $what" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    echo "install: FAILED: $what (last lines of $LOG):" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
}

# System packages (Debian): Java for pycocoevalcap (METEOR-jar/SPICE/PTB), WordNet for NLTK METEOR.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  need=()
  command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
  [ -f /usr/share/wordnet/data.noun ] || need+=(wordnet-base wordnet-sense-index)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "installing system packages: ${need[*]}"
    step "apt-get update" apt-get update -qq
    step "apt-get install ${need[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${need[@]}"
  fi
fi

[ -x .venv/bin/python ] || step "create .venv" "$PY" -m venv .venv
echo "installing vpbench[${EXTRAS}] into .venv (torch==2.13.0 first; log: .venv-install.log)"
step "upgrade pip" .venv/bin/python -m pip install -q --upgrade pip
step "torch==2.13.0" .venv/bin/python -m pip install -q torch==2.13.0
step "vpbench[${EXTRAS}]" .venv/bin/python -m pip install -q -c constraints.txt -e ".[${EXTRAS}]"
cat <<MSG
vpbench $(.venv/bin/python -c 'import vpbench; print(vpbench.__version__)') installed in $(pwd)/.venv
The 'vpbench' command is .venv/bin/vpbench: run it by that path, or 'source .venv/bin/activate' first.
  .venv/bin/vpbench tasks      # registered tasks
  .venv/bin/vpbench --help     # all commands
MSG
