#!/usr/bin/env bash
# Install the system programs rackemu's tests, benchmarks and `--nats spawn` need: nats-server,
# prometheus and chromium (Debian packages; chromium drives the rack view's browser test through
# playwright-core, which downloads no browser). Idempotent: does nothing when all are present. Never
# starts services. Debian installs them to /usr/sbin or /usr/bin; nats-server is looked up on PATH (or
# $RACKEMU_NATS_SERVER).
set -euo pipefail

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

missing=()
for bin in nats-server prometheus chromium; do
  if have "$bin"; then
    echo "ensure-deps: $bin present"
  else
    missing+=("$bin")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "ensure-deps: missing ${missing[*]}; need root or sudo to run apt-get" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deps: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "ensure-deps: missing ${missing[*]}: running apt-get update"
if ! "${SUDO[@]}" apt-get update; then
  echo "ensure-deps: apt-get update failed" >&2
  exit 1
fi
# The binaries are named as their Debian packages.
echo "ensure-deps: running apt-get install -y ${missing[*]}"
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "ensure-deps: apt-get install ${missing[*]} failed" >&2
  exit 1
fi

for bin in "${missing[@]}"; do
  if ! have "$bin"; then
    echo "ensure-deps: $bin still missing after apt-get install" >&2
    exit 1
  fi
done
echo "ensure-deps: installed ${missing[*]}"
