"""The retrain sensor with the real things: a Dagster instance, app-db and an MLflow store in an embedded home. The
code location's sensor is evaluated as the daemon would, and the run it asks for is executed in-process with the
request's tags. The steps build on each other, in file order: v1 trained by hand, then drifted versions arrive."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dagster import DagsterRunStatus, RunsFilter, SensorResult, SkipReason, build_sensor_context

from mlplatform.appdb.alias_history import history
from mlplatform.appdb.datasets import get_version, read_rows
from mlplatform.appdb.reports import latest_report
from mlplatform.definitions import build_definitions
from mlplatform.retraining import REASON_TAG, TRIGGER_TAG
from mlplatform.serving.reconcile import stop_all

from conftest import Lifecycle, embedded_settings
from sensor_world import World

DATASET, MODEL = "iris", "mlplatform_iris"
# Drift is the trigger here; the new-data trigger is tried on its own below.
WATCHING = {"MLPLATFORM_RETRAIN_ON_NEW_DATA": "false", "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": "60"}


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, migrated_mlflow_store):
    home = tmp_path_factory.mktemp("retrain") / "home"
    runner = Lifecycle(embedded_settings(home, migrated_mlflow_store, **WATCHING))
    runner.load(DATASET)
    runner.run("training_job", DATASET)  # v1: challenger and Production, trained by hand
    yield runner
    stop_all(runner.serving())
    runner.instance.dispose()


def evaluate(lifecycle: Lifecycle, **fields):
    """One tick of the code location's retrain sensor, built from the home's settings with ``fields`` changed."""
    settings = lifecycle.settings.model_copy(update=fields) if fields else lifecycle.settings
    defs = build_definitions(settings, environ={})
    resources = {name: defs.resources[name] for name in ("app_db", "mlflow")}
    context = build_sensor_context(instance=lifecycle.instance, resources=resources)
    [sensor] = [s for s in defs.sensors if s.name == "retrain_sensor"]
    return sensor(context)


def run(lifecycle: Lifecycle, request):
    job = lifecycle.defs.resolve_job_def("training_job")
    return job.execute_in_process(
        instance=lifecycle.instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
    )


def load_shifted(lifecycle: Lifecycle, folder: Path, shift: float) -> None:
    """A new version of the dataset: v1's rows with every feature moved by ``shift``."""
    v1 = get_version(lifecycle.engine, DATASET, 1)
    rows = read_rows(lifecycle.engine, v1)
    rows[v1.features] = rows[v1.features] + shift
    path = folder / f"iris-shifted-{shift}.csv"
    rows.to_csv(path, index=False)
    lifecycle.load(DATASET, str(path), v1.target_column)


def test_nothing_to_retrain_while_the_candidate_has_the_latest_data(lifecycle):
    lifecycle.load("wine")  # never trained: its first training is left to whoever loaded it, whatever triggers
    for result in (evaluate(lifecycle), evaluate(lifecycle, retrain_on_new_data=True)):
        assert isinstance(result, SkipReason)
    assert result.skip_message == "nothing to retrain in 2 datasets (watching new_data, drift, quality)"


def test_a_new_version_starts_training_when_new_data_is_watched(lifecycle):
    load_shifted(lifecycle, lifecycle.settings.home.parent, 3.0)  # v2
    assert isinstance(evaluate(lifecycle), SkipReason)  # new data is not watched in this home ...
    result = evaluate(lifecycle, retrain_on_new_data=True)  # ... it is by default
    [request] = result.run_requests
    assert (request.run_key, request.partition_key) == ("iris:v2:new_data", DATASET)
    assert request.tags == {TRIGGER_TAG: "new_data", REASON_TAG: "new data: iris v2, 150 rows"}


def test_drift_retrains_and_the_gate_moves_production_saying_why(lifecycle):
    lifecycle.run("monitoring_job", DATASET)  # what the daily schedule does: it finds v2 drifted
    first, second = evaluate(lifecycle), evaluate(lifecycle)
    assert isinstance(first, SensorResult)
    [request] = first.run_requests
    assert [r.run_key for r in second.run_requests] == [request.run_key]  # same state, same run
    assert request.run_key.startswith("iris:v2:drift:report")
    assert request.tags[TRIGGER_TAG] == "drift"
    assert request.tags[REASON_TAG] == "drift on 4 of 4 features in iris v2"

    result = run(lifecycle, request)
    assert result.success
    registry = lifecycle.registry()
    assert registry.require_alias(MODEL, "challenger").tags["dataset_version"] == "2"
    moved = history(lifecycle.engine, MODEL, "Production")[-1]
    assert (moved["from_version"], moved["to_version"]) == (1, 2)
    assert moved["actor"] == f"dagster run {result.run_id}"
    assert moved["reason"].startswith("retrained: drift on 4 of 4 features in iris v2; candidate accuracy ")
    assert history(lifecycle.engine, MODEL, "challenger")[-1]["reason"].startswith("retrained: drift on 4 of 4")
    assert lifecycle.instance.get_run_by_id(result.run_id).tags[REASON_TAG] == request.tags[REASON_TAG]
    assert evaluate(lifecycle).skip_message.startswith("nothing to retrain")  # the candidate has seen v2


def test_the_alias_sensor_then_serves_the_retrained_version(lifecycle):
    world = World(lifecycle, MODEL)
    result, runs = world.tick_and_run()
    assert [r.success for r in runs] == [True]
    [server] = world.status()
    assert server["healthy"] and world.invoke(server["url"], world.sample_payload())[0] == "2"


def test_a_second_trigger_inside_the_cooldown_waits_and_says_until_when(lifecycle):
    load_shifted(lifecycle, lifecycle.settings.home.parent, -3.0)  # v3, drifted from v2's training rows
    lifecycle.run("monitoring_job", DATASET)
    [retrained] = lifecycle.instance.get_run_records(RunsFilter(tags={TRIGGER_TAG: "drift"}))
    until = time.strftime("%H:%M UTC", time.gmtime(retrained.create_timestamp.timestamp() + 3600))
    result = evaluate(lifecycle)
    assert isinstance(result, SkipReason)
    assert result.skip_message == f"drift on 4 of 4 features in iris v3, but cool-down until {until}"


def test_the_daily_maximum_holds_retraining_back(lifecycle):
    [retrained] = lifecycle.instance.get_run_records(RunsFilter(tags={TRIGGER_TAG: "drift"}))
    next_slot = time.strftime("%H:%M UTC", time.gmtime(retrained.create_timestamp.timestamp() + 24 * 3600))
    result = evaluate(lifecycle, retrain_cooldown_minutes=0.0, retrain_daily_max=1)
    assert result.skip_message.endswith(f"but daily max of 1 automatic retrainings reached, next after {next_slot}")


def test_with_drift_switched_off_the_quality_drop_is_the_reason(lifecycle):
    [request] = evaluate(lifecycle, retrain_on_drift=False, retrain_cooldown_minutes=0.0).run_requests
    assert request.run_key.startswith("iris:v3:quality:report") and request.tags[TRIGGER_TAG] == "quality"
    report = latest_report(lifecycle.engine, DATASET)  # production v2 scored on v3, shifted the other way
    validation = float(lifecycle.registry().require_alias(MODEL, "Production").tags["metric_value"])
    assert report["production_score"] < validation * 0.95
    assert request.tags[REASON_TAG] == (
        f"production accuracy {report['production_score']:.4f} on iris v3 is more than 5% off its validation "
        f"{validation:.4f}"
    )


def test_no_second_training_while_one_is_in_flight(lifecycle):
    job = lifecycle.defs.resolve_job_def("training_job")
    # A run someone launched from the UI, created and not finished yet (a queued run needs a code server's origin).
    queued = lifecycle.instance.create_run_for_job(
        job, tags={"dagster/partition": DATASET}, status=DagsterRunStatus.NOT_STARTED
    )
    unguarded = {"retrain_cooldown_minutes": 0.0}
    held = evaluate(lifecycle, **unguarded)
    assert held.skip_message.endswith(f"but training run {queued.run_id[:8]} in flight")
    lifecycle.instance.report_run_canceled(queued)
    [request] = evaluate(lifecycle, **unguarded).run_requests
    assert request.run_key.startswith("iris:v3:drift:report")
