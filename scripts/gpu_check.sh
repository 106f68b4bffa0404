#!/usr/bin/env bash
# The GPU check (issue 17) as one command for a bare GPU machine with no package registry: it uses
# only what travels with the checkout (scripts/gpu_prep.sh made it: .gpu-node/{prefix,debs,media},
# .whl) and what the machine's image has (CUDA, nvcc, PyTorch, CMake, ninja, nanobind, pytest).
#   1 facts      nvidia-smi, driver, `ldconfig -p | grep nvcuvid`, `ls /usr/local/nvidia/lib*`; without
#                libnvcuvid.so.1 NVDEC cannot run: recorded, and the hybrid/CPU parts still run
#   2 setup      the carried FFmpeg prefix (pkg-config files moved to where it is now), pkgconf if the
#                image has no pkg-config, the carried wheels, the pre-made test media
#   3 build      lerobot_stream against that FFmpeg with CUDA on (sm_90 + PTX), into /tmp/lrs-site
#   4 tests      LRS_REQUIRE_GPU=1 pytest tests/test_cuda.py tests/test_decode_device.py: NVDEC and
#                hybrid frames vs CPU frames (±3), zero-copy DLPack, auto routing, capability errors,
#                GPU decode stage vs CPU stage, pinned batches, the 10k-batch leak check
#   5 sanitizer  compute-sanitizer memcheck on the colour kernels' tests, when the tool is there
#   6 bench      bench/benchmark_gpu.py: ours vs ffmpeg -hwaccel cuda (the NVDEC limit) on the same
#                files, the hybrid AV1 path vs cores x dav1d, torchcodec CUDA, PyNvVideoCodec
# Results go to OUT_DIR (default $OUT, else build/gpu-check): summary.json (every step: ran, skipped
# or failed, why, seconds), facts.txt, build.log, tests.log, sanitizer.log, bench.log, gpu_bench.json.
# On a machine without a GPU it is a dry run: it runs what it can (tests skip with their reasons,
# the bench's CPU rows), lists each skip and why, and exits 0 unless something that ran failed.
# Budget: 8 minutes in all (LRS_GPU_CHECK_BUDGET seconds, default 470): each step's timeout is its
# own limit or what is left of the budget, and summary.json is rewritten after every step, so a run
# stopped from outside still brings back what it did.
# usage: bash scripts/gpu_check.sh [OUT_DIR]
#   knobs: LRS_PYTHON (default python3, or .venv/bin/python when there is no GPU), LRS_GPU_CHECK_BUILD
#   (auto: build when a GPU is present, else use the installed package | always | never),
#   LRS_CUDA_ARCHITECTURES (default 90), LRS_BENCH_SECONDS (default 2)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="${1:-${OUT:-$repo/build/gpu-check}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
steps="$work/steps.tsv"
: > "$steps"
export PYTHONUNBUFFERED=1

budget="${LRS_GPU_CHECK_BUDGET:-470}"
write_summary() {  # summary.json from the steps so far
  "${python:-python3}" - "$steps" "$out/summary.json" "${gpu:-0}" "$SECONDS" <<'PY' 2> /dev/null || true
import json, sys
rows = [dict(zip(("step", "status", "seconds", "detail"), line.rstrip("\n").split("\t", 3)))
        for line in open(sys.argv[1]) if line.strip()]
json.dump({"gpu": sys.argv[3] == "1", "elapsed_s": int(sys.argv[4]), "steps": rows}, open(sys.argv[2], "w"), indent=1)
PY
}
record() {  # step status seconds detail
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$steps"
  printf '%-10s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4"
  [[ $1 == test ]] || write_summary
}
# Runs a step under a timeout (its limit, or what is left of the budget), logging to $out/$log;
# records ran / failed (rc, last lines) or skipped when the budget is spent.
run_step() {  # name limit_s log command...
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$SECONDS rc left=$((budget - SECONDS - 5))
  if ((left < 15)); then
    record "$name" skipped 0 "out of the ${budget}s budget"
    return 1
  fi
  ((limit > left)) && limit=$left
  timeout --kill-after=5 "$limit" "$@" > "$out/$log" 2>&1
  rc=$?
  if ((rc == 0)); then
    record "$name" ran $((SECONDS - t0)) "log: $log"
  else
    local why="rc=$rc"; ((rc == 124 || rc == 137)) && why="timed out after ${limit}s"
    record "$name" failed $((SECONDS - t0)) "$why: $(tail -n 3 "$out/$log" | tr '\n\t' '  ' | cut -c1-300)"
  fi
  return $rc
}

echo "== 1 facts"
t0=$SECONDS
gpu=0; nvidia-smi -L > /dev/null 2>&1 && gpu=1
{
  echo "== date"; date -u
  echo "== nvidia-smi"; nvidia-smi 2>&1 || echo "(nvidia-smi not found or failed: no GPU visible)"
  echo "== GPU, driver"; nvidia-smi --query-gpu=name,driver_version,memory.total,pci.bus_id --format=csv 2>&1 || true
  echo "== ldconfig -p | grep nvcuvid"; ldconfig -p 2>/dev/null | grep -i nvcuvid || echo "(none)"
  echo "== ls /usr/local/nvidia/lib*"; ls -la /usr/local/nvidia/lib* 2>&1 || echo "(none)"
  echo "== machine"; nproc; uname -a; cat /etc/os-release 2>/dev/null | head -2
  echo "== tools"; command -v nvcc compute-sanitizer cmake ninja pkg-config 2>&1; nvcc --version 2>&1 | tail -1
} > "$out/facts.txt" 2>&1
cat "$out/facts.txt"
nvcuvid_dir=""
if ldconfig -p 2>/dev/null | grep -q 'libnvcuvid\.so\.1'; then
  nvcuvid_dir=ldconfig
else
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
    [[ -e "$d/libnvcuvid.so.1" ]] && { nvcuvid_dir=$d; break; }
  done
fi
if ((gpu)); then
  record facts ran $((SECONDS - t0)) "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  if [[ -z "$nvcuvid_dir" ]]; then
    export LRS_EXPECT_NO_NVDEC=1
    record nvdec skipped 0 "libnvcuvid.so.1 is missing (container without NVIDIA_DRIVER_CAPABILITIES=video?): NVDEC cannot run; NVDEC tests and bench rows skip, hybrid and CPU parts run"
  elif [[ "$nvcuvid_dir" != ldconfig ]]; then
    export LD_LIBRARY_PATH="$nvcuvid_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  python="${LRS_PYTHON:-python3}"
else
  record facts ran $((SECONDS - t0)) "no GPU visible (nvidia-smi): dry run"
  python="${LRS_PYTHON:-$([[ -x .venv/bin/python ]] && echo "$repo/.venv/bin/python" || echo python3)}"
fi

echo "== 2 setup"
t0=$SECONDS
prefix="$repo/.gpu-node/prefix"
ffmpeg="$(command -v ffmpeg || true)"
if [[ -e "$prefix/lib/pkgconfig/libavcodec.pc" ]]; then
  # The .pc files name the folder the prefix was built in: point them at where it is now.
  old="$(sed -n 's/^prefix=//p' "$prefix/lib/pkgconfig/libavcodec.pc")"
  mkdir -p "$work/pkgconfig"
  for pc in "$prefix"/lib/pkgconfig/*.pc; do sed "s|$old|$prefix|g" "$pc" > "$work/pkgconfig/$(basename "$pc")"; done
  export PKG_CONFIG_PATH="$work/pkgconfig" LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  ffmpeg="$prefix/bin/ffmpeg"
  record prefix ran 0 "FFmpeg $(PKG_CONFIG_PATH=$work/pkgconfig pkg-config --modversion libavcodec 2>/dev/null || echo '?') from .gpu-node/prefix (moved from $old)"
else
  record prefix skipped 0 "no .gpu-node/prefix (run scripts/gpu_prep.sh): the system's FFmpeg is used"
fi
if ! command -v pkg-config > /dev/null && ls .gpu-node/debs/*.deb > /dev/null 2>&1; then
  for deb in .gpu-node/debs/*.deb; do dpkg -x "$deb" "$work/pkgconf"; done
  ln -sf pkgconf "$work/pkgconf/usr/bin/pkg-config"
  export PATH="$work/pkgconf/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$work/pkgconf/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
  record pkgconf ran 0 "pkg-config from the carried pkgconf debs"
fi
site=/tmp/lrs-site  # carried wheels and our build go here, first on PYTHONPATH (not in a dry run)
use_site() { mkdir -p "$site"; [[ ":${PYTHONPATH:-}:" == *":$site:"* ]] || export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"; }
if ((gpu)) && ls .whl/*.whl > /dev/null 2>&1; then
  use_site
  if "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl > "$work/wheels.log" 2>&1; then
    record wheels ran $((SECONDS - t0)) "$(cd .whl && ls *.whl | tr '\n' ' ')"
  else
    record wheels failed $((SECONDS - t0)) "$(tail -n 2 "$work/wheels.log" | tr '\n' ' ')"
  fi
elif ((gpu)); then
  record wheels skipped 0 "no .whl/*.whl: torchcodec and PyNvVideoCodec rows will say they are not importable"
else
  record wheels skipped 0 "dry run: the carried wheels are for the GPU image's Python 3.12"
fi
if [[ -d .gpu-node/media ]]; then
  export LRS_TEST_MEDIA="$repo/.gpu-node/media"
  record media ran 0 "pre-made clips and datasets: LRS_TEST_MEDIA=.gpu-node/media"
else
  record media skipped 0 "no .gpu-node/media: the tests make their media with PyAV (absent on the GPU image)"
fi

echo "== 3 build"
build="${LRS_GPU_CHECK_BUILD:-auto}"
if [[ $build == always || ($build == auto && $gpu == 1) ]]; then
  use_site
  args=(-C cmake.define.LRS_CUDA=ON -C "cmake.define.LRS_CUDA_ARCHITECTURES=${LRS_CUDA_ARCHITECTURES:-90}"
        -C build-dir=build/gpu-check-{wheel_tag})
  [[ -d "$prefix/include/ffnvcodec" ]] && args+=(-C "cmake.define.LRS_FFNVCODEC_INCLUDE_DIR=$prefix/include")
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" run_step build 170 build.log \
    "$python" -m pip install -v --no-build-isolation --no-deps --no-cache-dir --target "$site" --upgrade "${args[@]}" .
else
  record build skipped 0 "no GPU (LRS_GPU_CHECK_BUILD=$build): using the installed package"
fi
"$python" - >> "$out/facts.txt" 2>&1 <<'PY'
import json, lerobot_stream
from lerobot_stream import _core
print("== lerobot_stream", lerobot_stream.__file__, "built_with_cuda", _core.built_with_cuda)
print(json.dumps(_core.cuda_info(), indent=1))
PY
tail -n 30 "$out/facts.txt" | grep -E "built_with_cuda|\"reason\"|\"name\"|\"engines\"" || true

echo "== 4 tests"
pytest_args=(-p no:cacheprovider -rs -v tests/test_cuda.py tests/test_decode_device.py --junitxml="$work/junit.xml")
if ((gpu)); then
  LRS_REQUIRE_GPU=1 run_step tests 150 tests.log "$python" -m pytest "${pytest_args[@]}"
else
  run_step tests 150 tests.log "$python" -m pytest "${pytest_args[@]}"
fi
"$python" - "$work/junit.xml" >> "$steps" <<'PY' || true
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    sys.exit()
for case in root.iter("testcase"):
    skip = case.find("skipped")
    if skip is not None:
        print(f"test\tskipped\t0\t{case.get('name')}: {skip.get('message', '')[:240]}")
PY
grep -E "passed|failed" "$out/tests.log" | tail -n 1
write_summary

echo "== 5 sanitizer"
if ((!gpu)); then
  record sanitizer skipped 0 "no GPU"
elif ! command -v compute-sanitizer > /dev/null; then
  record sanitizer skipped 0 "compute-sanitizer not on PATH"
else
  LRS_REQUIRE_GPU=1 run_step sanitizer 80 sanitizer.log compute-sanitizer --tool memcheck --error-exitcode 9 \
    --target-processes all "$python" -m pytest -p no:cacheprovider -q tests/test_cuda.py \
    -k "frames_equal_cpu_frames and (h264-90x158 or av1-odd)"
fi

echo "== 6 bench"
if [[ -e .gpu-node/media/bench/av1.mp4 ]]; then
  run_step bench 80 bench.log "$python" bench/benchmark_gpu.py --media .gpu-node/media/bench \
    --out "$out/gpu_bench.json" --seconds "${LRS_BENCH_SECONDS:-1.5}" ${ffmpeg:+--ffmpeg "$ffmpeg"}
  grep -E "skipped|frames/s" "$out/bench.log" | sed 's/^/  /'
  "$python" - "$out/gpu_bench.json" >> "$steps" <<'PY' || true
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["rows"]
except Exception:
    sys.exit()
for r in rows:
    if r.get("skipped"):
        print(f"bench\tskipped\t0\t{r['peer']} {r['codec']} x{r['concurrency']}: {str(r['skipped'])[:240]}")
PY
else
  record bench skipped 0 "no .gpu-node/media/bench (run scripts/gpu_prep.sh)"
fi

echo "== summary"
write_summary
"$python" - "$steps" <<'PY'
import sys
rows = [dict(zip(("step", "status", "seconds", "detail"), line.rstrip("\n").split("\t", 3))) for line in open(sys.argv[1]) if line.strip()]
for status in ("failed", "skipped"):
    picked = [r for r in rows if r["status"] == status]
    print(f"{len(picked)} {status}" + (":" if picked else ""))
    for r in picked:
        print(f"  {r['step']}: {r['detail']}")
PY
echo "results in $out (total $((SECONDS))s)"
! grep -q $'\tfailed\t' "$steps"
