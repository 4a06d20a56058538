#!/usr/bin/env bash
# PostgreSQL for the tests: use the server on 127.0.0.1:5432 when one answers; otherwise make sure Debian's
# server binaries are installed, so the tests can start a throwaway cluster of their own (tests/postgres.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
if python3 - <<'PY' 2>/dev/null
import socket, sys
with socket.socket() as s:
    s.settimeout(2)
    sys.exit(s.connect_ex(("127.0.0.1", 5432)))
PY
then
  echo "postgres: using the server on 127.0.0.1:5432"
  exit 0
fi
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "postgres: binaries present, the tests start a throwaway cluster"
  exit 0
fi
echo "postgres: installing Debian's postgresql for a throwaway test cluster"
source tests/setup/apt.sh
apt_install postgres.sh postgresql
