#!/usr/bin/env bash
# Runs a command that downloads (apt-get, pip), trusting the CA bundle named by $PIP_CERT when it is set:
# the CA of a TLS-inspecting proxy, mounted into the build as a secret (see docker/README.md). pip reads
# PIP_CERT itself; apt, curl and Python's ssl module are pointed at the same file for this command only,
# so nothing of the CA stays in an image layer. Without PIP_CERT the command runs unchanged.
set -euo pipefail
if [[ -n "${PIP_CERT:-}" ]]; then
  if [[ ! -r "$PIP_CERT" ]]; then
    echo "PIP_CERT=$PIP_CERT is not a readable file: pass the CA bundle with" \
      "--secret id=proxy_ca,src=/path/to/ca.pem --build-arg PIP_CERT=/run/secrets/proxy_ca" >&2
    exit 1
  fi
  apt_conf="$(mktemp)"
  trap 'rm -f "$apt_conf"' EXIT
  printf 'Acquire::https::CAInfo "%s";\n' "$PIP_CERT" >"$apt_conf"
  export APT_CONFIG="$apt_conf" SSL_CERT_FILE="$PIP_CERT" REQUESTS_CA_BUNDLE="$PIP_CERT" CURL_CA_BUNDLE="$PIP_CERT"
fi
"$@"
