#!/usr/bin/env bash
# What tests/monitoring needs: Debian's prometheus (prometheus, promtool) and prometheus-blackbox-exporter.
# Idempotent and quick when both are there. The tests run the binaries with their own configs on loopback ports;
# no service of these packages may stay running: a policy-rc.d forbids starts during the install (unless the
# machine already has one), and any daemon that started anyway is stopped through its own init script or unit.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/setup/apt.sh

PACKAGES=(prometheus prometheus-blackbox-exporter)
SERVICES=(prometheus prometheus-blackbox-exporter)

have_all() {
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    && command -v prometheus-blackbox-exporter >/dev/null 2>&1
}

stop_services() {  # after an install only: the tests start their own; a package daemon would only be in the way
  local service
  for service in "${SERVICES[@]}"; do
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
      echo "observability: disabling the $service service (the tests run the binary with their own config)"
      "${SUDO[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif [[ -x "/etc/init.d/$service" ]] && "/etc/init.d/$service" status >/dev/null 2>&1; then
      echo "observability: stopping the $service service the package started"
      "${SUDO[@]}" "/etc/init.d/$service" stop || true
    fi
  done
}

if ! have_all; then
  apt_root observability.sh "${PACKAGES[@]}"
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e "$policy" ]]; then  # "101: action forbidden" for every invoke-rc.d start during this install
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  cleanup() { if [[ "$own_policy" -eq 1 ]]; then "${SUDO[@]}" rm -f "$policy"; fi; }
  trap cleanup EXIT
  apt_install observability.sh "${PACKAGES[@]}"
  cleanup
  trap - EXIT
  stop_services
fi

have_all || { echo "observability.sh: promtool, prometheus or prometheus-blackbox-exporter still missing" >&2; exit 1; }
echo "observability ready: $(prometheus --version 2>&1 | head -n1), $(prometheus-blackbox-exporter --version 2>&1 | head -n1)"
