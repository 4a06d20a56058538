"""The four jobs, one per old Airflow DAG (the Airflow wrappers keep those names), and their schedules."""

import os

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)
from dagster_mlflow import end_mlflow_on_run_finished

from mlplatform.assets.candidate_model import candidate_model
from mlplatform.assets.monitoring_report import monitoring_report
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.assets.predictions import predictions
from mlplatform.assets.production_alias import production_alias
from mlplatform.assets.raw_dataset import raw_dataset

data_load_job = define_asset_job(
    "data_load_job",
    selection=AssetSelection.assets(raw_dataset),
    partitions_def=dataset_partitions,
    description="Load a dataset into app-db (was Airflow DAG dag_data_predictions, @daily).",
)
training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.assets(candidate_model, production_alias),
    partitions_def=dataset_partitions,
    hooks={end_mlflow_on_run_finished},
    description="Train candidates and run the promotion gate (was Airflow DAG dag_training, @weekly).",
)
inference_job = define_asset_job(
    "inference_job",
    selection=AssetSelection.assets(predictions),
    partitions_def=dataset_partitions,
    description="Batch inference with the production model (was Airflow DAG dag_inference, @hourly).",
)
monitoring_job = define_asset_job(
    "monitoring_job",
    selection=AssetSelection.assets(monitoring_report),
    partitions_def=dataset_partitions,
    hooks={end_mlflow_on_run_finished},
    description="Candidate vs production and drift (was Airflow DAG dag_model_monitoring, @daily).",
)
JOBS = [data_load_job, training_job, inference_job, monitoring_job]
CRON = {"data_load_job": "@daily", "training_job": "@weekly", "inference_job": "@hourly", "monitoring_job": "@daily"}

def _default_status() -> DefaultScheduleStatus:
    """Schedules run unless MLPLATFORM_DAGSTER_SCHEDULES=stopped (when the Airflow DAGs schedule instead)."""
    value = os.environ.get("MLPLATFORM_DAGSTER_SCHEDULES", "running")
    if value not in ("running", "stopped"):
        raise ValueError(f"MLPLATFORM_DAGSTER_SCHEDULES must be 'running' or 'stopped', got {value!r}")
    return DefaultScheduleStatus.RUNNING if value == "running" else DefaultScheduleStatus.STOPPED


def _every_dataset(job) -> object:
    @schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=CRON[job.name],
        default_status=_default_status(),
        description=f"{job.name} for every dataset partition, {CRON[job.name]}.",
    )
    def _schedule(context: ScheduleEvaluationContext):
        keys = context.instance.get_dynamic_partitions(dataset_partitions.name)
        if not keys:
            return SkipReason("no dataset partitions yet: run `mlplatform demo` or add one in the UI")
        tick = context.scheduled_execution_time.isoformat()
        return [RunRequest(run_key=f"{key}:{tick}", partition_key=key) for key in keys]

    return _schedule

SCHEDULES = [_every_dataset(job) for job in JOBS]
