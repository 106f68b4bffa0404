#!/usr/bin/env bash
# Installs the value-parity reference, lerobot 0.6.1, into its own virtual environment (default
# .venv-oracle/ in the repo), never into the user's .venv. Tests and the benchmark's lerobot peer run
# it as a separate interpreter (tests/oracle.py, bench/lerobot_peer.py); nothing of lerobot is
# imported into the lerobot-stream process, and lerobot's files are installed as published.
#
# lerobot 0.6.1 requires Python >= 3.12 and torch < 2.12: `pip install "lerobot[dataset]==0.6.1"`
# resolves torch 2.11 and torchvision 0.26 from PyPI (CUDA builds that also run on CPU-only machines;
# about 4 GB installed, a few minutes the first time), plus PyAV, torchcodec, datasets and Pillow.
#
# Knobs:
#   LRS_ORACLE=0                 skip it (the oracle tests then skip with the reason)
#   LRS_ORACLE_VENV=dir          where the environment goes (default: <repo>/.venv-oracle)
#   LRS_ORACLE_PYTHON=python3.12 interpreter to build it from (default: the first Python >= 3.12 found
#                                on PATH or under pyenv)
# Idempotent: an environment that already imports lerobot 0.6.1 is kept.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ "${LRS_ORACLE:-1}" == 0 ]] && { echo "[oracle] LRS_ORACLE=0: not installing lerobot"; exit 0; }
venv="${LRS_ORACLE_VENV:-$repo/.venv-oracle}"
spec="lerobot[dataset]==0.6.1"
check='import sys, lerobot, torch, av, PIL; from lerobot.datasets.lerobot_dataset import LeRobotDataset
assert lerobot.__version__ == "0.6.1", lerobot.__version__
print(f"lerobot {lerobot.__version__}, torch {torch.__version__}, python {sys.version.split()[0]}")'

if [[ -x "$venv/bin/python" ]] && versions="$(HF_HUB_OFFLINE=1 "$venv/bin/python" -c "$check" 2>/dev/null)"; then
  echo "[oracle] $venv: $versions (already installed)"
  exit 0
fi

find_python() {
  local candidates=("${LRS_ORACLE_PYTHON:-}" python3.12 python3.13 python3.14 python3)
  local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  candidates+=("$pyenv_root"/versions/3.12*/bin/python "$pyenv_root"/versions/3.1[3-9]*/bin/python)
  local py
  for py in "${candidates[@]}"; do
    [[ -n "$py" ]] || continue
    if "$py" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
      >/dev/null 2>&1; then
      command -v "$py" 2>/dev/null || echo "$py"
      return 0
    fi
  done
  return 1
}

if ! python="$(find_python)"; then
  echo "[oracle] no Python >= 3.12 with venv found (lerobot 0.6.1 needs it); set LRS_ORACLE_PYTHON." >&2
  echo "[oracle] not installing lerobot: the value-parity tests will skip with this reason." >&2
  exit 0
fi
started=$SECONDS
echo "[oracle] creating $venv with $python, installing $spec"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec"
versions="$(HF_HUB_OFFLINE=1 "$venv/bin/python" -c "$check")"
echo "[oracle] $venv: $versions, installed in $((SECONDS - started)) s ($(du -sh "$venv" | cut -f1))"
