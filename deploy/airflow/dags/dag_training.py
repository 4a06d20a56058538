"""dag_training: train candidates and run the promotion gate: Dagster training_job (@weekly if Airflow schedules)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param
from dagster_bridge import DagsterJobOperator, dag_defaults, schedule_for

with DAG(
    dag_id="dag_training",
    description="Train candidate models and promote the better one (Dagster training_job)",
    schedule=schedule_for("@weekly"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(hours=4)),
    tags=["mlplatform", "dagster", "training"],
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            title="Dataset",
            description="Dataset partition to train on. Empty: every dataset partition Dagster has.",
        ),
        "seed": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            title="Seed",
            description="Seed of the split and the estimators. Empty: Dagster's default.",
        ),
        "validation_fraction": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            exclusiveMaximum=1,
            title="Validation fraction",
            description="Share of rows held out for validation. Empty: Dagster's default.",
        ),
        "promotion_margin": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Promotion margin",
            description="How much the candidate must beat production by. Empty: Dagster's default.",
        ),
    },
    doc_md="""
### dag_training: train and promote (Dagster `training_job`)

One task launches the Dagster job `training_job` (assets `candidate_model`, then `production_alias`: the new
model version is registered in MLflow as `mlplatform_<dataset>` with the candidate alias and moves the production
alias only when it beats production on held-out data) as one Dagster backfill. The task waits for it, fails when a
Dagster run fails or is canceled, and links to the backfill and its runs in its log.

**Params**: `dataset` (must be a dataset partition Dagster has: load it with `dag_data_predictions` first; an unknown
name fails at once, listing the known ones), and optionally `seed`, `validation_fraction`, `promotion_margin`,
passed to Dagster as run config (they need a `dataset`).

**Without `dataset`**: one Dagster run for every dataset partition, in one backfill; skipped when there is none.

**Schedule**: `@weekly` when `MLPLATFORM_SCHEDULER=airflow`, else none (Dagster's schedules run; trigger by hand).

**Dagster URL**: Airflow connection `dagster_default`, else `DAGSTER_URL`, else `http://localhost:3000`.
""",
) as dag:
    DagsterJobOperator(
        task_id="train_and_promote",
        job_name="training_job",
        asset_key_paths=["candidate_model", "production_alias"],
        config_params={
            "seed": ("candidate_model", "seed"),
            "validation_fraction": ("candidate_model", "validation_fraction"),
            "promotion_margin": ("production_alias", "margin"),
        },
    )
