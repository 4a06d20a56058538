"""dag_model_monitoring: candidate vs production and drift: Dagster monitoring_job (@daily if Airflow schedules)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param
from dagster_bridge import DagsterJobOperator, dag_defaults, schedule_for

with DAG(
    dag_id="dag_model_monitoring",
    description="Candidate vs production scores and feature drift (Dagster monitoring_job)",
    schedule=schedule_for("@daily"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(hours=1)),
    tags=["mlplatform", "dagster", "monitoring"],
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            title="Dataset",
            description="Dataset partition to monitor. Empty: every dataset partition Dagster has.",
        )
    },
    doc_md="""
### dag_model_monitoring: model monitoring (Dagster `monitoring_job`)

One task launches the Dagster job `monitoring_job` (asset `monitoring_report` with its checks
`production_quality` and `no_feature_drift`; the report is stored in app-db and logged to MLflow) as one Dagster
backfill, waits for it and fails when a Dagster run fails or is canceled; the task log links to the backfill and its
runs. A failed *check* is reported in Dagster without failing the run.

**Params**: `dataset` (a dataset partition Dagster has; an unknown name fails at once, listing the known ones).

**Without `dataset`**: one Dagster run for every dataset partition, in one backfill; skipped when there is none.

**Schedule**: `@daily` when `MLPLATFORM_SCHEDULER=airflow`, else none (Dagster's schedules run; trigger by hand).

**Dagster URL**: Airflow connection `dagster_default`, else `DAGSTER_URL`, else `http://localhost:3000`.
""",
) as dag:
    DagsterJobOperator(
        task_id="monitor",
        job_name="monitoring_job",
        asset_key_paths=["monitoring_report"],
    )
