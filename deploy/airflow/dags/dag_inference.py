"""dag_inference (@hourly): batch predictions with the production model by running Dagster's inference_job."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from dagster_bridge import DagsterJobOperator, dag_defaults, dataset_param

with DAG(
    dag_id="dag_inference",
    description="Batch inference with the production model (Dagster inference_job)",
    schedule="@hourly",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(minutes=50)),
    tags=["mlplatform", "dagster", "inference"],
    params={"dataset": dataset_param("Dataset partition to predict. Empty: every dataset partition Dagster has.")},
    doc_md="""
### dag_inference: batch predictions (Dagster `inference_job`)

One task launches the Dagster job `inference_job` (asset `predictions`: the production alias's model, and a shadow
alias's model when one is configured, predict the latest dataset version into app-db's `predictions` table, role
`production` or `shadow`; re-running the same batch replaces it), waits for it and fails when the Dagster run fails or is canceled;
the task log links to the run. `max_active_runs=1`: hourly runs never overlap.

**Params**: `dataset` (a dataset partition Dagster has; an unknown name fails at once, listing the known ones).

**Scheduled runs** (no `dataset`): one Dagster run for every dataset partition; skipped when there is none.

**Dagster URL**: Airflow connection `dagster_default`, else variable `dagster_url`, else `DAGSTER_URL`.
""",
) as dag:
    DagsterJobOperator(
        task_id="predict",
        job_name="inference_job",
        asset_key_paths=["predictions"],
    )
