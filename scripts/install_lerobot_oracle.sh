#!/usr/bin/env bash
# Installs lerobot 0.6.1 (the reference for value-parity tests, see tests/oracle.py) into the active
# python. Idempotent: when the pinned versions are already installed it only re-checks the patch.
#
# lerobot 0.6.1 needs Python >= 3.12 and torch < 2.12 on paper; we run it on 3.11 + torch 2.13 (CPU):
#   * the wheel is installed with --no-deps --ignore-requires-python, then
#     scripts/patch_lerobot_py311.py rewrites its seven PEP 695 typing statements;
#   * only the dependencies the dataset-reading import chain needs are installed, pinned; torch is
#     never installed or replaced;
#   * torchvision 0.28.0 (the release paired with torch 2.13) is installed --no-deps: PyPI only has the
#     CUDA build, whose compiled ops cannot load next to torch+cpu; tests/oracle.py skips its
#     torch.compile fake-kernel registrations, and lerobot's dataset path uses no torchvision op.
# Knob: LRS_ORACLE=0 skips the whole thing (the oracle tests then skip with a reason).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python}"
[[ "${LRS_ORACLE:-1}" == 0 ]] && { echo "[oracle] LRS_ORACLE=0: not installing lerobot"; exit 0; }

installed() { "$py" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
if [[ "$(installed lerobot)" == 0.6.1 && "$(installed torchvision)" == 0.28.0 && "$(installed datasets)" == 4.8.5 ]]; then
  "$py" "$repo/scripts/patch_lerobot_py311.py"
  echo "[oracle] lerobot 0.6.1 already installed"
  exit 0
fi

pip_install() { "$py" -m pip install -q --disable-pip-version-check "$@"; }
# Installing torchvision must never pull a torch: it requires torch==2.13.0, which 2.13.0+cpu satisfies.
"$py" -c "import torch; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__" || {
  echo "[oracle] needs torch 2.13.0 installed first" >&2; exit 1; }

wheel_dir="$(mktemp -d)"
trap 'rm -rf "$wheel_dir"' EXIT
"$py" -m pip download -q --disable-pip-version-check --no-deps --python-version 3.12 --only-binary=:all: \
  -d "$wheel_dir" lerobot==0.6.1
pip_install --no-deps --ignore-requires-python "$wheel_dir"/lerobot-0.6.1-*.whl
pip_install --no-deps torchvision==0.28.0
pip_install datasets==4.8.5 huggingface-hub==1.33.0 pandas==2.3.3 pillow==12.3.0 draccus==0.11.6 \
  einops==0.8.2 jsonlines==4.0.0 termcolor==3.3.0 safetensors==0.8.0 gymnasium==1.4.0
"$py" "$repo/scripts/patch_lerobot_py311.py"
PYTHONPATH="$repo/tests" "$py" -c "import oracle; e = oracle.lerobot_import_error(); assert e is None, e"
echo "[oracle] lerobot 0.6.1 installed"
