#!/bin/bash
# Runs once, on an empty data directory (docker-entrypoint-initdb.d): one role and one database per store, each
# with its own password. Point any of the URLs at another server to split them (docs/stack.md).
set -euo pipefail
for store in app mlflow dagster airflow; do
  var="$(echo "$store" | tr a-z A-Z)_DB_PASSWORD"
  password="${!var:?$var must be set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$store" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
SQL
done
