"""predictions: batch inference of the latest dataset version with the production model into app-db."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from mlplatform.appdb.datasets import read_rows, require_latest
from mlplatform.appdb.predictions import replace_batch
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.assets.production_alias import production_alias
from mlplatform.inference import batch_id, predict_rows
from mlplatform.quality.holdout import trained_model
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking

ROLE = "production"

@asset(
    partitions_def=dataset_partitions,
    deps=[production_alias],
    group_name="lifecycle",
    kinds={"sqlite", "postgres"},
    description="One prediction per row of the latest dataset version; re-running the same batch replaces it.",
)
def predictions(context: AssetExecutionContext, app_db: AppDatabase, mlflow: MlflowTracking) -> MaterializeResult:
    engine = app_db.engine
    model_name = mlflow.model_name(context.partition_key)
    model = trained_model(engine, mlflow, mlflow.require_alias(model_name, mlflow.production_alias))
    dataset = require_latest(engine, context.partition_key)
    rows = predict_rows(model, read_rows(engine, dataset), dataset, mlflow.production_alias, ROLE)
    batch = batch_id(dataset, model, ROLE)
    written = replace_batch(engine, rows, batch)
    context.log.info(f"batch {batch}: {written} predictions written")
    summary = rows["predicted_class"].value_counts() if dataset.task_type == "classification" else rows["predicted_value"].describe()
    return MaterializeResult(
        metadata={
            "batch_id": batch,
            "rows_written": written,
            "model_name": model_name,
            "model_version": model.number,
            "alias": mlflow.production_alias,
            "dataset_version": dataset.version,
            "summary": MetadataValue.md(summary.to_frame().to_markdown()),
        }
    )

