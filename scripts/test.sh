#!/usr/bin/env bash
# Set-up command 2: install what is missing, build, then run the whole test suite:
# ruff, the C++ tests under ctest (normal and ASan/UBSan builds) and pytest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/install.sh
venv="${LRS_VENV:-$repo/.venv}"
[[ "$venv" == none ]] || source "$venv/bin/activate"

echo "== ruff"
python -m ruff check python tests bench examples
python -m ruff format --check python tests bench examples

jobs="$(nproc)"
for flavour in release asan; do
  echo "== C++ tests ($flavour)"
  dir="build/cpp-$flavour"
  sanitize=OFF; type=Release
  if [[ $flavour == asan ]]; then sanitize=ON; type=Debug; fi
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=$type -DLRS_BUILD_PYTHON=OFF -DLRS_BUILD_TESTS=ON \
    -DLRS_BUILD_BENCH=ON -DLRS_SANITIZE=$sanitize -DLRS_CUDA="${LRS_CUDA:-AUTO}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
done

echo "== lerobot oracle (the value-parity reference; LRS_ORACLE=0 skips it and its tests skip with the reason)"
bash scripts/install_lerobot_oracle.sh

echo "== pytest"
python -m pytest -q -ra "$@"
