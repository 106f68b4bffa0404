#!/usr/bin/env bash
# Set-up command 1: install what is missing, build, write a small real v3 dataset (AV1, 2 cameras)
# and stream it through StreamingLeRobotDataset, printing throughput.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/install.sh"
venv="${LRS_VENV:-$repo/.venv}"
[[ "$venv" == none ]] || source "$venv/bin/activate"
exec python -m lerobot_stream.demo "$@"
