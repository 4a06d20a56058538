"""``mlplatform bench load`` on a real PostgreSQL: every documented key, and the platform's version is cleaned up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import inspect

from mlplatform.appdb.engine import engine_for

from postgres import fresh_database

KEYS = {
    "rows",
    "platform_seconds",
    "platform_rows_per_s",
    "platform_peak_rss_mb",
    "monitoring_seconds",
    "monitoring_rows_scored",
    "monitoring_peak_rss_mb",
    "to_sql_rows_per_s",
    "old_stack_rows_per_s",
    "old_stack_rows_timed",
    "ceiling_rows_per_s",
    "platform_vs_old_stack",
    "platform_vs_ceiling",
}


def test_bench_load_prints_every_key_and_leaves_nothing_behind(postgres_admin):
    with fresh_database(postgres_admin) as url:
        result = subprocess.run(
            [sys.executable, "-m", "mlplatform.cli.main", "bench", "load", "--rows", "20000", "--json"],
            env={**os.environ, "APP_DB_URI": url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert set(report) == KEYS
        assert report["rows"] == 20000 and report["old_stack_rows_timed"] == 20000
        assert 3_900 < report["monitoring_rows_scored"] <= 4_000  # the held-out fifth, less rows equal to training ones
        assert all(report[k] > 0 for k in KEYS)
        engine = engine_for(url)
        assert not [t for t in inspect(engine).get_table_names() if t.startswith(("ds_", "bench_"))]
        engine.dispose()


def test_bench_load_without_a_postgresql_app_db_says_what_to_set_and_opens_nothing(tmp_path):
    home = tmp_path / "not-created"
    environ = {k: v for k, v in os.environ.items() if k != "APP_DB_URI"}
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform.cli.main", "bench", "load", "--rows", "10"],
        env={**environ, "MLPLATFORM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == "bench load measures the PostgreSQL path: set APP_DB_URI=postgresql://..."
    )
    assert not home.exists()  # the embedded default's SQLite file was never opened
