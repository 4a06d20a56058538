#!/usr/bin/env bash
# Creates .venv-airflow at the repository root: Airflow 3 and the dagster-airlift operators, nothing else.
# Production Airflow images have neither Dagster nor the platform, so the DAG tests run Airflow from this venv,
# apart from the platform's .venv. Idempotent: a venv that already has the pinned versions is left as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-python3}"
VENV=".venv-airflow"  # the tests look for it here (tests/deploy/airflow_cli.py)
AIRFLOW_VERSION="3.3.2"
AIRLIFT_VERSION="0.29.27"
STAMP="$VENV/.installed-airflow-$AIRFLOW_VERSION-airlift-$AIRLIFT_VERSION"

if [[ -f "$STAMP" && -x "$VENV/bin/airflow" ]]; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check --upgrade pip
fi
"$VENV/bin/python" -m pip install -qq --disable-pip-version-check --progress-bar off \
  "apache-airflow==$AIRFLOW_VERSION" "dagster-airlift[in-airflow]==$AIRLIFT_VERSION"
rm -f "$VENV"/.installed-airflow-*
touch "$STAMP"
echo "airflow venv ready: $VENV ($("$VENV/bin/airflow" version 2>/dev/null || echo '?'))"
