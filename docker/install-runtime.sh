#!/usr/bin/env bash
# The runtime stage's install, as root, in two steps so that a new wheel does not reinstall torch:
#   install-runtime.sh system DIST   Python, the distribution's runtime libraries the wheel links (the
#                                    list runtime-packages.sh wrote in the build stage) and a virtual
#                                    environment at $VIRTUAL_ENV with torch
#   install-runtime.sh package DIST  the lerobot-stream wheel (with $LRS_EXTRAS) into that environment
# Leaves no compiler, no -dev package, no apt or pip cache. Building is scripts/install.sh's job; this
# only installs what it built.
#
# Environment:
#   VIRTUAL_ENV      where the virtual environment goes (required)
#   TORCH_SPEC       torch requirement, e.g. torch==2.13.0 (system step)
#   TORCH_INDEX_URL  index torch comes from (e.g. https://download.pytorch.org/whl/cu130); empty: the
#                    default index plus PIP_FIND_LINKS
#   LRS_EXTRAS       extras installed with the wheel (e.g. synth)
set -euo pipefail
step="${1:?usage: install-runtime.sh system|package DIST_DIR}"
dist="${2:?usage: install-runtime.sh system|package DIST_DIR}"
: "${VIRTUAL_ENV:?set VIRTUAL_ENV}"
pip_install() { "$VIRTUAL_ENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check "$@"; }

case "$step" in
  system)
    : "${TORCH_SPEC:?set TORCH_SPEC}"
    mapfile -t packages <"$dist/runtime-packages.txt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv "${packages[@]}" >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/*
    python3 -m venv "$VIRTUAL_ENV"
    pip_install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
    ;;
  package)
    wheels=("$dist"/lerobot_stream-*.whl)
    pip_install "${wheels[0]}${LRS_EXTRAS:+[$LRS_EXTRAS]}"
    "$VIRTUAL_ENV/bin/python" -c "import torch, lerobot_stream._core as c, lerobot_stream as l; \
print('[runtime] torch', torch.__version__, 'lerobot_stream', l.__version__)"
    ;;
  *)
    echo "install-runtime.sh: unknown step '$step' (system or package)" >&2
    exit 1
    ;;
esac
