#!/usr/bin/env bash
# The runtime stage's install, as root: the distribution's runtime libraries the wheel needs (the list
# runtime-packages.sh wrote in the build stage) and Python, then a virtual environment at $VIRTUAL_ENV
# with torch and the lerobot-stream wheel. Leaves no compiler, no -dev package, no apt or pip cache.
# Build and test steps live in scripts/install.sh; this only installs what that script built.
#
# Usage: install-runtime.sh DIST_DIR   (DIST_DIR holds the wheel and runtime-packages.txt)
# Environment:
#   VIRTUAL_ENV      where the virtual environment goes (required)
#   TORCH_SPEC       torch requirement, e.g. torch==2.13.0
#   TORCH_INDEX_URL  index torch comes from (e.g. https://download.pytorch.org/whl/cu130); empty: the
#                    default index plus PIP_FIND_LINKS
#   LRS_EXTRAS       extras installed with the wheel (e.g. synth)
set -euo pipefail
dist="${1:?usage: install-runtime.sh DIST_DIR}"
: "${VIRTUAL_ENV:?set VIRTUAL_ENV}" "${TORCH_SPEC:?set TORCH_SPEC}"

mapfile -t packages <"$dist/runtime-packages.txt"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv "${packages[@]}" >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/*

python3 -m venv "$VIRTUAL_ENV"
pip_install() { "$VIRTUAL_ENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check "$@"; }
pip_install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
wheels=("$dist"/lerobot_stream-*.whl)
pip_install "${wheels[0]}${LRS_EXTRAS:+[$LRS_EXTRAS]}"
"$VIRTUAL_ENV/bin/python" -c "import torch, lerobot_stream; print('[runtime] torch', torch.__version__, \
'lerobot_stream', lerobot_stream.__version__)"
