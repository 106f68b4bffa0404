#!/usr/bin/env bash
# Prints, one per line, the distribution packages that own the shared libraries the extension modules
# inside the wheels in DIST_DIR link directly (ELF NEEDED, e.g. libavformat60, libswscale7): the runtime
# stage installs exactly these (apt brings their dependencies), never a -dev package. Run it where the wheel was built (same distribution as the
# runtime base). A library that ldd cannot find is an error; one that no package owns (e.g. from
# /usr/local/cuda) is reported on stderr and left to the runtime base.
# Usage: runtime-packages.sh DIST_DIR
set -euo pipefail
dist="${1:?usage: runtime-packages.sh DIST_DIR}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob
wheels=("$dist"/*.whl)
((${#wheels[@]})) || { echo "runtime-packages.sh: no wheel in $dist" >&2; exit 1; }
for whl in "${wheels[@]}"; do python3 -m zipfile -e "$whl" "$tmp"; done
mapfile -t modules < <(find "$tmp" -name '*.so' -type f)
((${#modules[@]})) || { echo "runtime-packages.sh: no extension module in ${wheels[*]}" >&2; exit 1; }

deps="$(ldd "${modules[@]}")"
if grep -q 'not found' <<<"$deps"; then
  echo "runtime-packages.sh: unresolved libraries:" >&2
  grep 'not found' <<<"$deps" >&2
  exit 1
fi
owner_of() {  # the package owning a library file; merged-/usr systems record it under /lib or /usr/lib
  local real candidate
  real="$(realpath "$1")"
  for candidate in "$real" "${real#/usr}" "$1"; do
    dpkg-query -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
  done
  return 1
}
needed="$(readelf -d "${modules[@]}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | sort -u)"
for name in $needed; do
  # "libfoo.so.1 => /path (addr)", or for the dynamic loader just "/path/ld-linux-x86-64.so.2 (addr)"
  lib="$(awk -v name="$name" '($1 == name && $2 == "=>") { print $3; exit }
    ($1 ~ /^\// && substr($1, length($1) - length(name)) == "/" name) { print $1; exit }' <<<"$deps")"
  [[ -n "$lib" ]] || { echo "runtime-packages.sh: ldd does not resolve $name" >&2; exit 1; }
  owner_of "$lib" || echo "runtime-packages.sh: $lib belongs to no package (left to the runtime base)" >&2
done | sort -u
