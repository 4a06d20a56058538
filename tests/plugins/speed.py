"""Which tests are ``slow``, and the tests allowed more than the default timeout (pyproject.toml's ``timeout``).

Loaded with ``-p tests.plugins.speed`` (pyproject.toml's ``addopts``), so the lists live in this one file and the
test files stay as they are. ``make test`` runs everything; ``make test-quick`` runs ``-m "not slow"``, without
``tests/setup/`` having run, so a test is slow when it

- needs what ``tests/setup/`` provides (PostgreSQL, promtool and Prometheus, Chromium, the Airflow venv),
- starts servers (``dagster dev``, ``mlflow server``, model servers, SeaweedFS), or
- takes more than about 5 s on a busy two-core machine (``make test`` prints ``--durations``); one exception on
  purpose: ``assets/test_lifecycle.py::test_full_lifecycle_on_iris`` (about 10-20 s), the quick loop's one run of
  the whole lifecycle in-process.

A test that is not listed runs in the quick loop. A quick test that ran longer than ``QUICK_LIMIT_S`` is named at
the end of the run, so the list can follow the tests.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
QUICK_LIMIT_S = 30.0

# Patterns over "<path under tests/>::<test name with its parameters>"; a folder pattern ends with "/*".
SLOW = {
    "appdb/test_batch_inference_pg.py::*": "PostgreSQL, the whole lifecycle",
    "appdb/test_pgcopy.py::*": "PostgreSQL",
    "datasets/test_chunked_csv.py::*": "files of three 100,000-row chunks, loaded into app-db (10-50 s each)",
    "datasets/test_verbatim.py::*": "PostgreSQL",
    "quality/test_holdout.py::*": "a training and app-db versions read in chunks (about 10-30 s)",
    "appdb/test_dataset_loads.py::*": "PostgreSQL, loads in child processes (killed mid-way, racing)",
    "assets/test_tables.py::*": "the demo on a table with categories, a model server (about 2-3 min)",
    "assets/test_metric_gate.py::*": "three trainings (about 2-4 min)",
    "appdb/test_migrations.py::*[[]postgresql[]]": "PostgreSQL",
    "appdb/test_shadow_pairs.py::*[[]postgresql[]]": "PostgreSQL",
    "assets/test_lifecycle.py::test_gate_*": "two trainings (about 20-35 s)",
    "assets/test_lifecycle.py::test_datasets_do_not_overwrite_each_other": "two datasets end to end (about 35 s)",
    "assets/test_lifecycle.py::test_repredicting_a_batch_replaces_it": "lifecycle and a second inference (about 15 s)",
    "assets/test_bad_input.py::test_inference_without_production_names_the_alias": "a training first (about 10 s)",
    "cli/test_demo.py::*": "`mlplatform demo` serving a model, or other subprocesses (10-15 s each)",
    "deploy/*": "the Airflow venv, `dagster dev`",
    "faults/*": "faults injected into real servers (PostgreSQL, SeaweedFS, `mlflow server`, `dagster-daemon`)",
    "monitoring/test_live_monitoring.py::*": "Prometheus, the Blackbox exporter, a model server",
    "monitoring/test_model_quality_live.py::*": "the lifecycle, a model server, `mlplatform observe` (Prometheus)",
    "monitoring/test_promtool.py::*": "promtool (tests/setup/observability.sh)",
    "monitoring/test_logs_config.py::test_alloy_relabeling_*": "Prometheus",
    "production/*": "PostgreSQL, SeaweedFS, `mlflow server`, the demo",
    "serving/test_alias_sensor.py::*": "model servers, sensor ticks",
    "serving/test_scoring_server.py::*": "a training, `mlflow models serve` and the scoring process (about 1-2 min)",
    "sensors/test_retrain_sensor.py::*": "two trainings, a model server (1-3.5 min)",
    "stack/*": "docker-compose and the Docker Engine (tests/setup/docker.sh); the live stack test runs the lifecycle",
    "serving/test_dagster_dev_serves.py::*": "`dagster dev`, the demo",
    "serving/test_gateway_guard.py::*": "a gateway process per test, slow upstreams (about 5 s each)",
    "serving/test_canary.py::test_a_canary_weight_*": "a gateway process, 1,400 requests (about 5-15 s)",
    "serving/test_canary.py::test_weights_change_*": "a gateway process (about 5 s)",
    "serving/test_shadow.py::*": "a gateway process per test, mirrored requests (about 5 s each)",
    "serving/test_switch_drain.py::*": "a gateway, the scoring process, a slow batch across a switch (about 30-40 s)",
    "serving/test_bench_serve.py::*": "`mlplatform bench serve`: the demo, gateways, two scoring processes (2-3 min)",
    "serving/test_batch_under_load.py::*": "PostgreSQL, a training, a served model under load (about 2 min)",
    "serving/test_state.py::test_a_damaged_state_file_*": "`mlplatform serve` subprocesses (about 10 s each)",
    "serving/test_naming_and_desired.py::test_desired_servers_*": "registers more than a page of models (about 9 s)",
    "test_definitions.py::test_importing_the_definitions_*": "a clean Python importing the definitions (about 20 s)",
    "test_packaging.py::test_installed_wheel_*": "a venv, every module imported (about 15-20 s)",
    "test_workspace.py::*": "`dagster dev`",
    "ui/*": "Chromium, `dagster dev`, `mlflow server`, the demo",
}
# A test that asks for one of these fixtures (directly or through another fixture) needs tests/setup/.
SLOW_FIXTURES = {"postgres_admin": "PostgreSQL", "pg_lifecycle": "PostgreSQL"}

# More than the default timeout: set-up (session and module fixtures) counts toward the first test that uses it.
# Chosen from the time limits inside these tests (a demo subprocess gets 300-600 s, an `airflow` call 300 s).
TIMEOUTS_S = {
    "ui/*": 900,
    "deploy/*": 900,
    "faults/test_daemon_restarted_mid_switch.py::*": 1200,  # first match wins
    "faults/*": 600,
    "production/*": 900,
    "cli/test_demo.py::test_demo_twice_*": 660,
    "cli/test_demo.py::test_demo_prints_a_summary_table": 360,
    "serving/*": 600,
    # Alone, about 6 min; beside the Airflow, UI and fault tests that start with it on two cores, it once needed
    # more than 25 (its containers starved, not stuck): a timeout is for a hang, not for a busy machine.
    "stack/test_compose_stack.py::*": 2700,
    "test_workspace.py::*": 600,
    "monitoring/test_live_monitoring.py::*": 600,
    "monitoring/test_model_quality_live.py::*": 600,
    "appdb/test_batch_inference_pg.py::*": 600,
    "assets/test_tables.py::*": 900,
    "assets/test_metric_gate.py::*": 900,
}


# The longest files first: `make test` runs files on several workers (pytest-xdist, `--dist loadfile`), each file on
# one worker, in this order, so the long ones start at once instead of ending the run alone. Files not listed follow
# in collection order.
LONGEST_FIRST = (
    "stack/test_compose_stack.py",
    "deploy/*",
    "ui/*",
    "faults/*",
    "production/*",
    "assets/test_tables.py",
    "assets/test_metric_gate.py",
    "serving/test_dagster_dev_serves.py",
    "monitoring/test_model_quality_live.py",
    "monitoring/test_live_monitoring.py",
    "serving/test_alias_sensor.py",
)


def _key(item: pytest.Item) -> str:
    try:
        path = item.path.resolve().relative_to(TESTS).as_posix()
    except ValueError:
        return item.nodeid
    return f"{path}::{item.nodeid.split('::', 1)[1]}" if "::" in item.nodeid else path


def _first(patterns: dict, key: str):
    return next((value for pattern, value in patterns.items() if fnmatchcase(key, pattern)), None)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        key = _key(item)
        reason = _first(SLOW, key) or next(
            (why for name, why in SLOW_FIXTURES.items() if name in getattr(item, "fixturenames", ())), None
        )
        if reason and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow(reason=reason))
        seconds = _first(TIMEOUTS_S, key)
        if seconds and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds))
    rank = {id(item): _rank(_key(item).split("::", 1)[0]) for item in items}
    items.sort(key=lambda item: rank[id(item)])  # stable: a file's tests keep their order


def _rank(path: str) -> int:
    return next((n for n, pattern in enumerate(LONGEST_FIRST) if fnmatchcase(path, pattern)), len(LONGEST_FIRST))


_quick_but_long: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "slow" not in report.keywords:
        total = _quick_but_long.get(report.nodeid, 0.0) + report.duration
        _quick_but_long[report.nodeid] = total


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    long = {nodeid: s for nodeid, s in _quick_but_long.items() if s > QUICK_LIMIT_S}
    if long:
        terminalreporter.section("quick tests over the limit")
        terminalreporter.write_line(f"not marked slow, yet over {QUICK_LIMIT_S:.0f} s (list them in {__file__}):")
        for nodeid, seconds in sorted(long.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"  {seconds:6.1f} s  {nodeid}")
