#!/usr/bin/env bash
# Installs what is missing, then builds and installs lerobot-stream into ./.venv.
# The one install recipe: the README's commands, .ci/run and docker/Dockerfile all call it.
#
# Environment knobs:
#   LRS_VENV=path        virtual environment to use (default: .venv in the repo; "none" = current python)
#   LRS_TORCH_SPEC=spec  torch requirement installed when torch is missing (default torch==2.13.0)
#   LRS_CUDA=AUTO|ON|OFF build the CUDA sources (AUTO: when nvcc, cuda.h and nv-codec-headers are all
#                        found, else CPU-only with the reason printed; ON: fail with the reason)
#   LRS_APT=0            never call apt-get (not root, or packages managed elsewhere)
#   LRS_EXTRAS=...       pip extras to install with the package (default: test,synth)
#   LRS_WHEEL_DIR=dir    only build a wheel into dir: installs the build packages and tools but no test
#                        packages, no torch and not the package itself (docker/Dockerfile's build stage)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

wheel_dir="${LRS_WHEEL_DIR:-}"
apt_packages=(pkg-config g++ libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
  libffmpeg-nvenc-dev)  # nv-codec-headers: nvcuvid declarations for the CUDA build (headers only;
                        # without them LRS_CUDA=AUTO builds CPU-only and says so)
[[ -n "$wheel_dir" ]] || apt_packages+=(libgtest-dev ffmpeg nginx-light)  # tests only
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then missing+=(python3-venv); fi
if ! python3 -c "import os, sysconfig; assert os.path.exists(sysconfig.get_path('include') + '/Python.h')" \
  2>/dev/null; then missing+=(python3-dev); fi
if ((${#missing[@]})); then
  if [[ "${LRS_APT:-1}" != 0 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "[install] apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[install] missing system packages: ${missing[*]}" >&2
    echo "[install] install them (e.g. sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi

venv="${LRS_VENV:-$repo/.venv}"
if [[ "$venv" != none ]]; then
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  # shellcheck disable=SC1091
  source "$venv/bin/activate"
fi
py=python
pip_install() { "$py" -m pip install -q --disable-pip-version-check "$@"; }

pip_install "scikit-build-core>=0.10" "nanobind>=2.4" "cmake>=3.24" ninja
if [[ -n "$wheel_dir" ]]; then
  echo "[install] building the lerobot-stream wheel into $wheel_dir (LRS_CUDA=${LRS_CUDA:-AUTO})"
  "$py" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$wheel_dir" .
  exit 0
fi
"$py" -c "import torch" 2>/dev/null || pip_install "${LRS_TORCH_SPEC:-torch==2.13.0}"
echo "[install] building lerobot-stream (LRS_CUDA=${LRS_CUDA:-AUTO})"
pip_install --no-build-isolation ".[${LRS_EXTRAS:-test,synth}]"
"$py" -c "import lerobot_stream as l; print('[install] lerobot_stream', l.__version__, 'ok')"
# Whether the CUDA sources were built, and if not why (Note [CUDA build requirements] in CMakeLists.txt).
"$py" -c "from lerobot_stream import _core as c; i = c.cuda_info()
print('[install] CUDA sources built' if c.built_with_cuda else '[install] ' + i['reason'])"
