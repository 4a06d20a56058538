"""predictions: batch inference of the latest dataset version with the production model (and a shadow) into app-db."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from mlplatform.appdb.datasets import require_latest
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.assets.production_alias import production_alias
from mlplatform.inference import batch_id, identity, run_batch
from mlplatform.quality.holdout import trained_model
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking


@asset(
    partitions_def=dataset_partitions,
    deps=[production_alias],
    group_name="lifecycle",
    kinds={"sqlite", "postgres"},
    description="One prediction per row of the latest dataset version; re-running the same batch replaces it. "
    "With a shadow alias configured, that version predicts the same rows under the same batch id, role 'shadow'.",
)
def predictions(context: AssetExecutionContext, app_db: AppDatabase, mlflow: MlflowTracking) -> MaterializeResult:
    engine = app_db.engine
    model_name = mlflow.model_name(context.partition_key)
    production = trained_model(engine, mlflow, mlflow.require_alias(model_name, mlflow.production_alias))
    dataset = require_latest(engine, context.partition_key)
    batch = batch_id(dataset, production)
    roles = {"production": (mlflow.production_alias, production)}
    shadow_version = mlflow.alias_version(model_name, mlflow.shadow_alias) if mlflow.shadow_alias else None
    if shadow_version is not None:
        roles["shadow"] = (mlflow.shadow_alias, trained_model(engine, mlflow, shadow_version))
    written = {}
    for role, (alias, model) in roles.items():
        who = identity(batch, role, dataset, model, alias)
        written[role] = run_batch(engine, dataset, model.model, model.dataset.features, who)
        context.log.info(f"batch {batch} ({role}, {model_name} v{model.number}): {written[role]} rows written")
    return MaterializeResult(
        metadata={
            "batch_id": batch,
            "rows_written": written["production"],
            "shadow_rows_written": written.get("shadow", 0),
            "model_name": model_name,
            "model_version": production.number,
            "alias": mlflow.production_alias,
            "shadow_version": int(shadow_version.version) if shadow_version else None,
            "dataset_version": dataset.version,
        }
    )
