"""dag_data_predictions: load a dataset into app-db: Dagster data_load_job (@daily if Airflow schedules)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param
from dagster_bridge import DagsterJobOperator, dag_defaults, schedule_for

with DAG(
    dag_id="dag_data_predictions",
    description="Load a dataset into app-db (Dagster data_load_job, asset raw_dataset)",
    schedule=schedule_for("@daily"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(hours=1)),
    tags=["mlplatform", "dagster", "data"],
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            title="Dataset",
            description="Dataset (= Dagster partition) to load; a new name is added as a partition. "
            "Empty: reload every dataset Dagster already has.",
        ),
        "source": Param(
            "",
            type="string",
            title="Source",
            description="A built-in (iris, wine, breast_cancer, diabetes) or a CSV path Dagster's code location "
            "can read. Empty: the source recorded for the dataset, else the built-in of the same name.",
        ),
        "target": Param("", type="string", title="Target column", description="The target column of a CSV source."),
    },
    doc_md="""
### dag_data_predictions: load a dataset (Dagster `data_load_job`)

The work happens in Dagster: one task launches the job `data_load_job` (asset `raw_dataset` with its blocking
data checks) as one Dagster backfill through Dagster's GraphQL API, waits for it and fails when a Dagster run fails
or is canceled. The task log links to the backfill and to each Dagster run.

**Params** (trigger with config):
- `dataset`: the dataset name, which is also its Dagster partition. A new name is added as a partition first
  (Dagster checks it: a built-in `iris`, `wine`, `breast_cancer`, `diabetes`, or any valid name with a `source`)
  and removed again when its load fails.
- `source`, `target`: a built-in or a CSV path (as Dagster's code location sees it) and its target column; they
  need a `dataset`.

**Without `dataset`**: reload every dataset partition Dagster has; loading unchanged content is a no-op in
Dagster. With no partition yet the task is skipped: trigger once with `{"dataset": "iris"}`.

**Schedule**: `@daily` when `MLPLATFORM_SCHEDULER=airflow`, else none (Dagster's schedules run; trigger by hand).

**Dagster URL**: Airflow connection `dagster_default`, else `DAGSTER_URL`, else `http://localhost:3000`.
A failed Dagster run fails the task and Airflow retries it (`retries`, `retry_delay`); a canceled one is not retried.
""",
) as dag:
    DagsterJobOperator(
        task_id="load_dataset",
        job_name="data_load_job",
        asset_key_paths=["raw_dataset"],
        config_params={"source": ("raw_dataset", "source"), "target": ("raw_dataset", "target")},
        adds_datasets=True,
    )
