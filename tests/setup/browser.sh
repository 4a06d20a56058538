#!/usr/bin/env bash
# What tests/ui needs: Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and
# selenium in the platform's venv. Idempotent and quick when all is there: apt-get update runs only when an
# install from the current package lists fails (none yet, or stale). Never downloads a browser of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${VENV:-.venv}"
SELENIUM_VERSION="4.51.0"  # the same pin as pyproject's test extra
PACKAGES=(chromium chromium-driver)

if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  source tests/setup/apt.sh
  apt_install browser.sh "${PACKAGES[@]}"
fi

if ! "$VENV/bin/python" -c "import sys, selenium; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off "selenium==$SELENIUM_VERSION"
fi

echo "browser ready: $(/usr/bin/chromium --version 2>/dev/null), $(/usr/bin/chromedriver --version | cut -d' ' -f1-2)," \
  "selenium $("$VENV/bin/python" -c 'import selenium; print(selenium.__version__)')"
