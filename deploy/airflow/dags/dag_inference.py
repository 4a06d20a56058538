"""dag_inference: batch predictions with the production model: Dagster inference_job (@hourly if Airflow schedules)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param
from dagster_bridge import DagsterJobOperator, dag_defaults, schedule_for

with DAG(
    dag_id="dag_inference",
    description="Batch inference with the production model (Dagster inference_job)",
    schedule=schedule_for("@hourly"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(minutes=50)),
    tags=["mlplatform", "dagster", "inference"],
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            title="Dataset",
            description="Dataset partition to predict. Empty: every dataset partition Dagster has.",
        )
    },
    doc_md="""
### dag_inference: batch predictions (Dagster `inference_job`)

One task launches the Dagster job `inference_job` (asset `predictions`: the production alias's model, and a shadow
alias's model when one is configured, predict the latest dataset version into app-db's `predictions` table, role
`production` or `shadow`; re-running the same batch replaces it) as one Dagster backfill, waits for it and fails
when a Dagster run fails or is canceled; the task log links to the backfill and its runs. `max_active_runs=1`:
hourly runs never overlap.

**Params**: `dataset` (a dataset partition Dagster has; an unknown name fails at once, listing the known ones).

**Without `dataset`**: one Dagster run for every dataset partition, in one backfill; skipped when there is none.

**Schedule**: `@hourly` when `MLPLATFORM_SCHEDULER=airflow`, else none (Dagster's schedules run; trigger by hand).

**Dagster URL**: Airflow connection `dagster_default`, else `DAGSTER_URL`, else `http://localhost:3000`.
""",
) as dag:
    DagsterJobOperator(
        task_id="predict",
        job_name="inference_job",
        asset_key_paths=["predictions"],
    )
