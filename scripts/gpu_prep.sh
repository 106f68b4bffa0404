#!/usr/bin/env bash
# Prepares, on a machine WITH a package registry (no GPU needed), everything scripts/gpu_check.sh needs
# on a bare GPU machine that has none, in git-ignored folders of this checkout:
#   .gpu-node/prefix  decode-only FFmpeg 5.1 + dav1d with NVDEC/CUDA hwaccel and the ffmpeg program,
#                     built from source by ../shared/gpu-node/{fetch-sources,build-ffmpeg}.sh (~10 MB)
#   .gpu-node/debs    pkgconf (pkg-config for the build, in case the GPU image lacks it)
#   .gpu-node/media   the GPU tests' clips and datasets (LRS_TEST_MEDIA, tests/clips.py) and the GPU
#                     benchmark's files, so the GPU machine needs no PyAV
#   .whl              wheels for the GPU image's Python 3.12: torchcodec (its torch 2.11's) and
#                     PyNvVideoCodec, the benchmark's GPU peers
# Then prints the one device call a GPU session makes. Re-running reuses what is there.
# usage: bash scripts/gpu_prep.sh      knobs: LRS_PYTHON, LRS_GPU_NODE_SCRIPTS, LRS_TORCHCODEC_SPEC,
#                                             LRS_PYNVVIDEOCODEC_SPEC (empty = skip that wheel)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${LRS_PYTHON:-$repo/.venv/bin/python}"
scripts="${LRS_GPU_NODE_SCRIPTS:-$repo/../shared/gpu-node}"
node="$repo/.gpu-node"
mkdir -p "$node" .whl
for d in /.gpu-node/ /.whl/; do  # never committed (also in .gitignore)
  git check-ignore -q "${d#/}" 2>/dev/null || echo "$d" >> "$(git rev-parse --git-path info/exclude)"
done

echo "== FFmpeg + dav1d with NVDEC (.gpu-node/prefix)"
if [[ -e "$node/prefix/lib/pkgconfig/libavcodec.pc" && -x "$node/prefix/bin/ffmpeg" ]]; then
  echo "already built"
else
  [[ -x "$scripts/build-ffmpeg.sh" ]] || { echo "no $scripts/build-ffmpeg.sh (set LRS_GPU_NODE_SCRIPTS)"; exit 1; }
  "$scripts/fetch-sources.sh" "$node/src"
  "$scripts/build-ffmpeg.sh" "$node/src" "$node/prefix"
  rm -rf "$node/src" "$node/prefix/share"  # sources and docs are not needed on the GPU machine
fi

echo "== pkgconf (.gpu-node/debs)"
if ! ls "$node"/debs/libpkgconf3_*.deb "$node"/debs/pkgconf-bin_*.deb >/dev/null 2>&1; then
  mkdir -p "$node/debs"
  lists="$(mktemp -d)"; trap 'rm -rf "$lists"' EXIT
  mkdir -p "$lists/partial"
  apt_opts=(-o "Dir::State::Lists=$lists" -o APT::Architecture=amd64 -o APT::Architectures=amd64)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$node/debs" && apt-get "${apt_opts[@]}" download -qq pkgconf-bin libpkgconf3)
fi
ls "$node/debs"

echo "== wheels (.whl, for Python 3.12 manylinux x86-64)"
download() {
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$1"
}
for spec in "${LRS_TORCHCODEC_SPEC-torchcodec==0.11.0}" "${LRS_PYNVVIDEOCODEC_SPEC-pynvvideocodec==2.2.4}"; do
  [[ -n "$spec" ]] && download "$spec"
done
ls -la .whl

echo "== test and benchmark media (.gpu-node/media)"
# The GPU tests' fixtures make their media before a test decides to skip, so this run (which skips
# the GPU tests here) stores every clip and dataset the GPU run will ask for.
LRS_TEST_MEDIA="$node/media" "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_decode_device.py
[[ -e "$node/media/bench/av1.mp4" ]] || "$python" bench/benchmark_gpu.py --make-media "$node/media/bench" --frames 300

echo "== what travels (limit 64 MiB: tracked files + carried folders)"
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb "$node/prefix" "$node/debs" "$node/media" .whl | tail -1 | cut -f1)
du -sh "$node/prefix" "$node/debs" "$node/media" .whl
echo "tracked files $((tracked >> 20)) MiB + carried $((carried >> 20)) MiB = $(((tracked + carried) >> 20)) MiB"
(( tracked + carried < 62 << 20 )) || echo "WARNING: over the 64 MiB a device call carries: drop a wheel (LRS_PYNVVIDEOCODEC_SPEC=)"
cat <<'MSG'

Ready. In a session whose task has a GPU machine, make ONE device call:
  run(command="bash scripts/gpu_check.sh", timeout_s=560,
      carry=[".gpu-node/prefix", ".gpu-node/debs", ".gpu-node/media", ".whl"])
Its $OUT brings back summary.json, facts.txt, build.log, tests.log, sanitizer.log, bench.log, gpu_bench.json.
MSG
