"""The four jobs, one per old Airflow DAG (the Airflow wrappers keep those names), and their schedules.

Who runs them on schedule is one setting, ``MLPLATFORM_SCHEDULER``, read by Dagster and the Airflow DAGs alike:
``dagster`` (the default) starts these schedules; ``airflow`` leaves them stopped and the DAGs keep their old
schedules. Either way every job runs once per tick, never twice.
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from mlplatform.assets.candidate_model import candidate_model
from mlplatform.assets.monitoring_report import monitoring_report
from mlplatform.assets.partitions import DATASET_PARTITIONS, dataset_partitions
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
    description="Candidate vs production and drift (was Airflow DAG dag_model_monitoring, @daily).",
)
JOBS = [data_load_job, training_job, inference_job, monitoring_job]
CRON = {"data_load_job": "@daily", "training_job": "@weekly", "inference_job": "@hourly", "monitoring_job": "@daily"}


def schedules(scheduler: str) -> list:
    """One schedule per job, running when ``scheduler`` is ``dagster``, stopped (startable in the UI) otherwise."""
    status = DefaultScheduleStatus.RUNNING if scheduler == "dagster" else DefaultScheduleStatus.STOPPED
    return [_every_dataset(job, status) for job in JOBS]


def _every_dataset(job, status: DefaultScheduleStatus):
    @schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=CRON[job.name],
        default_status=status,
        description=f"{job.name} for every dataset partition, {CRON[job.name]}.",
    )
    def _schedule(context: ScheduleEvaluationContext):
        keys = context.instance.get_dynamic_partitions(DATASET_PARTITIONS)
        if not keys:
            return SkipReason("no dataset partitions yet: run `mlplatform demo` or add one in the UI")
        tick = context.scheduled_execution_time.isoformat()
        return [RunRequest(run_key=f"{key}:{tick}", partition_key=key) for key in keys]

    return _schedule
