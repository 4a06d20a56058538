"""dag_data_predictions (@daily): load a dataset into app-db by running Dagster's data_load_job."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Param
from dagster_bridge import DagsterDataLoadOperator, dag_defaults, dataset_param

with DAG(
    dag_id="dag_data_predictions",
    description="Load a dataset into app-db (Dagster data_load_job, asset raw_dataset)",
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=dag_defaults(execution_timeout=timedelta(hours=1)),
    tags=["mlplatform", "dagster", "data"],
    params={
        "dataset": dataset_param(
            "Dataset (= Dagster partition) to load. Empty: reload every dataset Dagster already has."
        ),
        "source": Param(
            "", type="string", title="Source",
            description="A built-in (iris, wine, breast_cancer, diabetes) or a CSV path Dagster's code location "
            "can read. Empty: the source recorded for the dataset, else the built-in of the same name.",
        ),
        "target": Param("", type="string", title="Target column", description="The target column of a CSV source."),
    },
    doc_md="""
### dag_data_predictions: load a dataset (Dagster `data_load_job`)

The work happens in Dagster: one task launches the job `data_load_job` (asset `raw_dataset` with its blocking
data checks) through Dagster's GraphQL API, waits for it and fails when the Dagster run fails or is canceled.
The task log names each Dagster run and links to it.

**Params** (trigger with config):
- `dataset`: the dataset name, which is also its Dagster partition. A new name is added as a partition first;
  it must be a built-in (`iris`, `wine`, `breast_cancer`, `diabetes`) or come with a `source`.
- `source`, `target`: a built-in or a CSV path (as Dagster's code location sees it) and its target column.

**Scheduled runs** (no `dataset`): reload every dataset partition Dagster has; loading unchanged content is a
no-op in Dagster. With no partition yet the task is skipped: trigger once with `{"dataset": "iris"}`.

**Dagster URL**: Airflow connection `dagster_default`, else variable `dagster_url`, else `DAGSTER_URL`.
Unknown names and rejected run config fail at once; other failures are retried (`retries`, `retry_delay`).
""",
) as dag:
    DagsterDataLoadOperator(
        task_id="load_dataset",
        job_name="data_load_job",
        asset_key_paths=["raw_dataset"],
    )
