"""predictions: batch inference of the latest dataset version with the production model (and a shadow) into app-db."""

from collections import Counter

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from mlplatform.appdb.datasets import require_latest
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.assets.production_alias import production_alias
from mlplatform.inference import batch_id, identity, run_batch
from mlplatform.masking import masks_credentials
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
@masks_credentials
def predictions(context: AssetExecutionContext, app_db: AppDatabase, mlflow: MlflowTracking) -> MaterializeResult:
    engine, registry = app_db.engine, mlflow.registry()
    aliases = registry.aliases
    model_name = registry.model_name(context.partition_key)
    production = trained_model(engine, registry, registry.require_alias(model_name, aliases.production))
    dataset = require_latest(engine, context.partition_key)
    batch = batch_id(dataset, production)
    roles = {"production": (aliases.production, production)}
    shadow_version = registry.alias_version(model_name, aliases.shadow) if aliases.shadow else None
    if shadow_version is not None:
        roles["shadow"] = (aliases.shadow, trained_model(engine, registry, shadow_version))
    written: dict[str, int] = {}
    unknown: Counter = Counter()
    for role, (alias, model) in roles.items():
        who = identity(batch, role, dataset, model, alias)
        counts = unknown if role == "production" else Counter()
        written[role] = run_batch(engine, dataset, model.model, model.dataset.features, who, unknown=counts)
        context.log.info(f"batch {batch} ({role}, {model_name} v{model.number}): {written[role]} rows written")
    for column, count in unknown.items():
        context.log.warning(f"{count} rows hold a category of {column!r} unseen in training (predicted without it)")
    return MaterializeResult(
        metadata={
            "batch_id": batch,
            "rows_written": written["production"],
            "shadow_rows_written": written.get("shadow", 0),
            "model_name": model_name,
            "model_version": production.number,
            "alias": aliases.production,
            "shadow_version": int(shadow_version.version) if shadow_version else None,
            "dataset_version": dataset.version,
            "unknown_categories": MetadataValue.json(dict(unknown)),
        }
    )
