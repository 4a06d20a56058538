"""retrain_sensor: starts ``training_job`` for a dataset with new data, drift or a production quality drop.

A sensor rather than declarative automation (an ``AutomationCondition`` on ``candidate_model``): a condition can
say "a parent was updated" but not "the newest monitoring report found drift on the version the candidate has not
seen", it cannot put the reason on the run, and its only guard is the evaluation interval, not a cool-down per
dataset or a daily budget. The sensor reads stored state (app-db dataset versions and monitoring reports, the
candidate's tags in MLflow, Dagster's runs), so it keeps no cursor; each request's run key is the state that
triggered it (``iris:v2:drift:report7``), so two daemons ask for the same run and a state asks once. The run carries
``mlplatform/trigger`` and ``mlplatform/retrain_reason``; the assets put the reason in the alias history. The gate
(``production_alias``) then decides, and the alias sensor serves what it promotes.

When nothing starts, the tick's skip message says why for each triggered dataset: a training run in flight, the
cool-down (until HH:MM UTC) or the daily maximum. MLflow or app-db unreadable is a skipped tick, never a crash.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mlplatform.assets.jobs import training_job
from mlplatform.assets.partitions import DATASET_PARTITIONS
from mlplatform.logs import log_event
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.retraining import DAY_S, REASON_TAG, TRIGGER_TAG, TRIGGERS, RetrainPolicy, find_trigger, held_back
from mlplatform.sensors.alias_sensor import IN_FLIGHT
from mlplatform.sensors.ticks import minimum_interval

POLL_SECONDS = 30
PARTITION_TAG = "dagster/partition"


def retrain_sensor(policy: RetrainPolicy):
    @sensor(
        name="retrain_sensor",
        job=training_job,
        minimum_interval_seconds=minimum_interval(POLL_SECONDS),
        default_status=DefaultSensorStatus.RUNNING,
        description="Retrains a dataset on new data, drift or a production quality drop (MLPLATFORM_RETRAIN_*), "
        "within a cool-down per dataset and a daily maximum; the gate then decides.",
    )
    def _retrain_sensor(context: SensorEvaluationContext, app_db: AppDatabase, mlflow: MlflowTracking):
        if not policy.watching:
            return SkipReason("every retraining trigger is off (MLPLATFORM_RETRAIN_ON_*)")
        datasets = context.instance.get_dynamic_partitions(DATASET_PARTITIONS)
        try:
            registry = mlflow.registry()
            triggers = [t for d in datasets if (t := find_trigger(app_db.engine, registry, d, policy))]
        except Exception as exc:  # noqa: BLE001 - a store that cannot be read skips the tick, nothing is lost
            log_event(context.log, "retrain_state_unreadable", level="warning", error=type(exc).__name__)
            return SkipReason(f"app-db or MLflow not readable ({type(exc).__name__}), will retry on the next tick")
        if not triggers:
            watched = ", ".join(policy.watching)
            return SkipReason(f"nothing to retrain in {len(datasets)} datasets (watching {watched})")
        now = time.time()
        starts = automatic_starts(context.instance, now - DAY_S)
        requests, waiting = [], []
        for trigger in triggers:
            why = held_back(
                policy,
                in_flight(context.instance, trigger.dataset),
                last_automatic_start(context.instance, trigger.dataset),
                starts,
                now,
            )
            if why:
                log_event(context.log, "retrain_held_back", dataset=trigger.dataset, reason=trigger.reason, why=why)
                waiting.append(f"{trigger.reason}, but {why}")
                continue
            log_event(context.log, "retrain_requested", dataset=trigger.dataset, trigger=trigger.kind)
            starts.append(now)
            requests.append(
                RunRequest(
                    run_key=trigger.key,
                    partition_key=trigger.dataset,
                    tags={TRIGGER_TAG: trigger.kind, REASON_TAG: trigger.reason},
                )
            )
        if not requests:
            return SkipReason("; ".join(waiting))
        return SensorResult(run_requests=requests)

    return _retrain_sensor


def automatic_starts(instance: DagsterInstance, since: float) -> list[float]:
    """When each automatic training run created since ``since`` was asked for (all datasets)."""
    records = instance.get_run_records(
        filters=RunsFilter(
            job_name=training_job.name,
            tags={TRIGGER_TAG: list(TRIGGERS)},
            created_after=datetime.fromtimestamp(since, UTC),
        )
    )
    return [r.create_timestamp.timestamp() for r in records]


def last_automatic_start(instance: DagsterInstance, dataset: str) -> float | None:
    records = instance.get_run_records(
        filters=RunsFilter(job_name=training_job.name, tags={TRIGGER_TAG: list(TRIGGERS), PARTITION_TAG: dataset}),
        limit=1,
    )
    return records[0].create_timestamp.timestamp() if records else None


def in_flight(instance: DagsterInstance, dataset: str) -> list[str]:
    """Training runs of ``dataset`` queued or in progress, started by anyone."""
    runs = instance.get_runs(
        filters=RunsFilter(job_name=training_job.name, statuses=IN_FLIGHT, tags={PARTITION_TAG: dataset})
    )
    return [r.run_id for r in runs]
