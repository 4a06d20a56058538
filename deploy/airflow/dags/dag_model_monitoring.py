"""dag_model_monitoring (@daily): candidate vs production and drift by running Dagster's monitoring_job."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from dagster_bridge import DagsterJobOperator, dag_defaults, dataset_param

with DAG(
    dag_id="dag_model_monitoring",
    description="Candidate vs production scores and feature drift (Dagster monitoring_job)",
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(hours=1)),
    tags=["mlplatform", "dagster", "monitoring"],
    params={"dataset": dataset_param("Dataset partition to monitor. Empty: every dataset partition Dagster has.")},
    doc_md="""
### dag_model_monitoring: model monitoring (Dagster `monitoring_job`)

One task launches the Dagster job `monitoring_job` (asset `monitoring_report` with its checks
`production_quality` and `no_feature_drift`; the report is stored in app-db and logged to MLflow), waits for it and
fails when the Dagster run fails or is canceled; the task log links to the run. A failed *check* is reported in
Dagster without failing the run.

**Params**: `dataset` (a dataset partition Dagster has; an unknown name fails at once, listing the known ones).

**Scheduled runs** (no `dataset`): one Dagster run for every dataset partition; skipped when there is none.

**Dagster URL**: Airflow connection `dagster_default`, else variable `dagster_url`, else `DAGSTER_URL`.
""",
) as dag:
    DagsterJobOperator(
        task_id="monitor",
        job_name="monitoring_job",
        asset_key_paths=["monitoring_report"],
    )
