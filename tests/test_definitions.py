"""The one code location: what `dagster dev -w workspace.yaml` shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from dagster import AssetCheckKey, AssetKey, DefaultScheduleStatus, DefaultSensorStatus, EnvVar, build_schedule_context
from pydantic import ValidationError

from mlplatform.definitions import build_definitions, defs
from mlplatform.sensors.ticks import minimum_interval
from mlplatform.settings import Settings, platform_variables

TICK = datetime(2026, 11, 27, 6, tzinfo=UTC)
ASSETS = ["raw_dataset", "candidate_model", "production_alias", "predictions", "monitoring_report"]


def test_five_assets_in_lineage_order():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(ASSETS)
    for upstream, downstream in zip(ASSETS, ASSETS[1:]):
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys


def test_checks_are_declared():
    graph = defs.resolve_asset_graph()
    assert graph.asset_check_keys == {
        AssetCheckKey(AssetKey("raw_dataset"), "typed_schema"),
        AssetCheckKey(AssetKey("raw_dataset"), "no_nulls"),
        AssetCheckKey(AssetKey("raw_dataset"), "target_present"),
        AssetCheckKey(AssetKey("monitoring_report"), "no_feature_drift"),
        AssetCheckKey(AssetKey("monitoring_report"), "production_quality"),
    }


def test_jobs_map_onto_the_old_dags_with_their_schedules():
    crons = {s.job_name: s.cron_schedule for s in defs.schedules}
    assert crons == {
        "data_load_job": "@daily",
        "training_job": "@weekly",
        "inference_job": "@hourly",
        "monitoring_job": "@daily",
    }


@pytest.mark.parametrize(
    ("scheduler", "status"), [("dagster", DefaultScheduleStatus.RUNNING), ("airflow", DefaultScheduleStatus.STOPPED)]
)
def test_one_scheduler_runs_the_jobs(scheduler, status, tmp_path):
    settings = Settings.from_mapping({"MLPLATFORM_HOME": str(tmp_path), "MLPLATFORM_SCHEDULER": scheduler})
    assert {s.default_status for s in build_definitions(settings).schedules} == {status}


def test_a_wrong_scheduler_is_refused_naming_the_variable():
    with pytest.raises(ValidationError, match="MLPLATFORM_SCHEDULER"):
        Settings.from_mapping({"MLPLATFORM_SCHEDULER": "both"})


def test_the_sensor_polls_as_configured_and_runs_by_default(tmp_path):
    settings = Settings.from_mapping({"MLPLATFORM_HOME": str(tmp_path), "MLFLOW_SERVE_POLL_SECONDS": "17"})
    [sensor] = [s for s in build_definitions(settings).sensors if s.name == "alias_sensor"]
    assert sensor.minimum_interval_seconds == minimum_interval(17)  # on the daemon's grid: tests/sensors/test_ticks.py
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_settings_from_a_mapping_ignore_this_processs_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")  # as mlflow.set_tracking_uri sets it
    monkeypatch.setenv("MLFLOW_SERVE_ALIASES", "Production,challenger")
    settings = Settings.from_mapping({"MLPLATFORM_HOME": str(tmp_path)})
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.serve_aliases == ("Production",)


def test_set_variables_reach_the_resources_as_env_vars_and_defaults_as_values(tmp_path):
    environ = {"MLPLATFORM_HOME": str(tmp_path), "APP_DB_URI": "postgresql+psycopg://app:secret@db/app"}
    resources = build_definitions(Settings.from_mapping(environ), environ).resources
    assert resources["app_db"].uri == EnvVar("APP_DB_URI")
    assert resources["mlflow"].tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


IMPORT_AND_REPORT = """
import json, os, sys
before = dict(os.environ)
import mlplatform.definitions as definitions
print(json.dumps({"changed": {k: v for k, v in os.environ.items() if before.get(k) != v},
                  "removed": sorted(set(before) - set(os.environ)),
                  "sensors": [s.name for s in definitions.defs.sensors]}))
"""


def test_importing_the_definitions_changes_neither_environment_nor_filesystem(tmp_path):
    """A clean environment (no platform variable), an empty working directory: after the import both are as they
    were, and the embedded default's home was not created."""
    # (MLflow's own bookkeeping variables, _MLFLOW_*, are MLflow's business: the parent's are not passed on.)
    env = {k: v for k, v in os.environ.items() if k not in platform_variables() and not k.startswith("_MLFLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_REPORT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"changed": {}, "removed": [], "sensors": ["alias_sensor", "retrain_sensor"]}
    assert list(tmp_path.iterdir()) == []


def test_schedules_request_one_run_per_dataset(lifecycle):
    schedule = next(s for s in defs.schedules if s.job_name == "inference_job")
    empty = schedule.evaluate_tick(
        build_schedule_context(
            instance=lifecycle.instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
        )
    )
    assert not empty.run_requests and "no dataset partitions" in empty.skip_message
    lifecycle.instance.add_dynamic_partitions("dataset", ["iris", "wine"])
    tick = schedule.evaluate_tick(
        build_schedule_context(
            instance=lifecycle.instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
        )
    )
    assert sorted(r.partition_key for r in tick.run_requests) == ["iris", "wine"]
    assert len({r.run_key for r in tick.run_requests}) == 2


def test_the_run_queue_lets_one_serving_run_per_server_run_at_a_time(tmp_path):
    """The alias sensor relies on it: a repair requested while a serving run for that server is under way waits."""
    from mlplatform import dagster_home
    from mlplatform.sensors.alias_sensor import SERVER_TAG

    instance = dagster_home.instance(Settings.from_mapping({"MLPLATFORM_HOME": str(tmp_path)}))
    try:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    finally:
        instance.dispose()
    assert {"key": SERVER_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
