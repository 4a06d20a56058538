#!/usr/bin/env bash
# make stack-secrets: write deploy/.env (or the file given) from deploy/.env.example, each <generate> replaced by
# 32 random bytes (hex), <generate-fernet> by a Fernet key, <docker-socket-gid> by the Docker socket's group.
# An existing file is kept (delete it to rotate; the databases keep the passwords they were created with).
set -euo pipefail
cd "$(dirname "$0")"
target="${1:-.env}"
target="${target#deploy/}"
if [[ -e "$target" ]]; then
  echo "stack-secrets: deploy/$target exists, kept"
  exit 0
fi
gid=$(stat -c %g /var/run/docker.sock 2>/dev/null || getent group docker | cut -d: -f3 || echo 0)
umask 077
python3 - "$gid" > "$target.tmp" <<'PY'
import base64, secrets, sys
for line in open(".env.example"):
    line = line.rstrip("\n")
    while "<generate>" in line:
        line = line.replace("<generate>", secrets.token_hex(32), 1)
    line = line.replace("<generate-fernet>", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    line = line.replace("<docker-socket-gid>", sys.argv[1])
    print(line)
PY
mv "$target.tmp" "$target"
echo "stack-secrets: wrote deploy/$target (mode 600)"
