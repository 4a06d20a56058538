"""candidate_model: train the candidate pipelines, log each to MLflow, register the best with the candidate alias."""

import pandas as pd
from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, asset
from pydantic import Field

from mlplatform.appdb.datasets import read_rows, require_latest
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.assets.raw_dataset import raw_dataset
from mlplatform.masking import masks_credentials
from mlplatform.plots import frame_table, markdown_image
from mlplatform.quality.dataset_checks import dataset_checks
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.retraining import with_retrain_reason
from mlplatform.serving.rollout import move_and_serve
from mlplatform.training.scoring import check_metric, default_metric
from mlplatform.training.split import SplitSpec, split


class TrainingConfig(Config):
    seed: int = Field(default=0, description="Seed of the train/validation split and of the seeded estimators.")
    validation_fraction: float = Field(default=0.2, description="Share of rows held out for validation.")
    metric: str = Field(
        default="",
        description="Primary metric, used by the gate and monitoring too: accuracy, balanced_accuracy, f1_macro, "
        "roc_auc (classification); rmse, mae, r2 (regression). Empty: accuracy, or balanced_accuracy when the "
        "classes are imbalanced; rmse for regression.",
    )


@asset(
    partitions_def=dataset_partitions,
    deps=[raw_dataset],
    group_name="lifecycle",
    kinds={"mlflow", "scikitlearn"},
    description="The best of the candidate pipelines, registered as a new model version with the candidate alias.",
)
@masks_credentials
def candidate_model(
    context: AssetExecutionContext,
    config: TrainingConfig,
    app_db: AppDatabase,
    mlflow: MlflowTracking,
    serving: ServingResource,
) -> MaterializeResult:
    # Imported here, by training runs alone: they import scikit-learn and skops (about 1 s that every process
    # loading the code location, each serving run's included, would pay otherwise).
    from mlplatform.training.fit import best_candidate, fit_candidates  # noqa: PLC0415
    from mlplatform.training.tracking import log_training  # noqa: PLC0415

    name = context.partition_key
    dataset = require_latest(app_db.engine, name)
    frame = read_rows(app_db.engine, dataset)
    failed = [c.name for c in dataset_checks(frame, dataset) if not c.passed]
    if failed:
        raise Failure(f"dataset {name} v{dataset.version} fails the data checks {failed}: not training on it")
    spec = SplitSpec(config.seed, config.validation_fraction)
    train, validation = split(frame, dataset.target_column, dataset.task_type, spec)
    target, task_type = dataset.target_column, dataset.task_type
    metric = check_metric(task_type, config.metric or default_metric(task_type, frame[target]))
    fitted = fit_candidates(train, validation, dataset.features, target, task_type, spec.seed, dataset.kinds)
    best = best_candidate(fitted, metric)
    tags = {"dagster_run_id": context.run_id, "dataset": name, "dataset_version": str(dataset.version)}
    registry = mlflow.registry()
    runs = log_training(registry, fitted, best, dataset, train, validation, tags, metric, spec.seed)

    model_name = registry.model_name(name)
    version_tags = {
        **tags,
        **spec.as_tags(),
        "algorithm": best.algorithm,
        "metric": metric,
        "metric_value": str(best.metrics[metric]),
    }
    version = registry.register(runs.best_model_uri, runs.best_run_id, model_name, version_tags)
    candidate_alias = registry.aliases.candidate
    move_and_serve(  # a served candidate alias switches now, in this run
        registry,
        app_db.engine,
        serving,
        model_name,
        candidate_alias,
        int(version.version),
        f"dagster run {context.run_id}",
        with_retrain_reason(context.run.tags, f"best of {len(fitted)} candidates on {name} v{dataset.version}"),
    )
    context.log.info(f"registered {model_name} v{version.version} ({best.algorithm}) as {candidate_alias}")
    return MaterializeResult(
        metadata={
            "model_name": model_name,
            "version": int(version.version),
            "alias": candidate_alias,
            "algorithm": best.algorithm,
            f"validation_{metric}": best.metrics[metric],
            "dataset_version": dataset.version,
            "train_rows": len(train),
            "validation_rows": len(validation),
            "mlflow_run_id": runs.best_run_id,
            "mlflow_parent_run_id": runs.parent_run_id,
            "candidates": frame_table(_scores(fitted, best)),
            "validation_plot": markdown_image(runs.best_plot_png, f"{best.algorithm} on the validation rows"),
            "metric": metric,
            **_insights(runs),
        }
    )


def _insights(runs) -> dict:
    """Per-class scores and permutation importance of the registered candidate, as asset metadata."""
    insights = runs.insights
    if insights is None:
        return {}
    shown = {
        "permutation_importance": frame_table(insights.importance),
        "importance_plot": markdown_image(insights.importance_png, "permutation importance"),
    }
    if insights.per_class is not None:
        shown["per_class_scores"] = frame_table(insights.per_class)
    return shown


def _scores(fitted, best) -> pd.DataFrame:
    """One row per candidate: its validation metrics and whether it is the one registered."""
    return pd.DataFrame(
        [
            {"algorithm": c.algorithm, **{f"validation_{k}": v for k, v in c.metrics.items()}, "registered": c is best}
            for c in fitted
        ]
    )
