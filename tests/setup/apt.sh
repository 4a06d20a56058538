# Sourced by the set-up scripts: install Debian packages as root (directly, or through sudo), running
# `apt-get update` only when an install from the current package lists fails (none yet, or stale).
# Usage: apt_install SCRIPT_NAME PACKAGE...   (SUDO is left set for the caller's own privileged steps)

apt_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "$1: installing ${*:2} needs root: apt-get install ${*:2}" >&2
    exit 1
  fi
}

apt_install() {
  local script=$1
  shift
  apt_root "$script" "$@"
  local install=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
  if ! "${install[@]}"; then
    "${SUDO[@]}" apt-get update -q
    "${install[@]}"
  fi
}
