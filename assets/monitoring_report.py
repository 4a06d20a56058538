"""monitoring_report: candidate vs production on held-out rows and feature drift, in MLflow and app-db."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from mlplatform.appdb.datasets import require_latest
from mlplatform.appdb.reports import save_report
from mlplatform.appdb.shadow_pairs import ingest_shadow_pairs, shadow_summary
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.assets.predictions import predictions
from mlplatform.masking import masks_credentials
from mlplatform.monitoring import build_report, log_report, report_row
from mlplatform.plots import frame_table, markdown_image
from mlplatform.quality.holdout import trained_model
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource


@asset(
    partitions_def=dataset_partitions,
    deps=[predictions],
    group_name="lifecycle",
    kinds={"mlflow"},
    check_specs=[
        AssetCheckSpec("no_feature_drift", asset="monitoring_report"),
        AssetCheckSpec("production_quality", asset="monitoring_report"),
    ],
    description="Production and candidate scored on rows neither was trained on, per-feature drift (KS, PSI), and "
    "the gateway's shadow pairs (agreement with production, latencies, errors).",
)
@masks_credentials
def monitoring_report(
    context: AssetExecutionContext, app_db: AppDatabase, mlflow: MlflowTracking, serving: ServingResource
) -> MaterializeResult:
    engine, registry = app_db.engine, mlflow.registry()
    name = context.partition_key
    model_name = registry.model_name(name)
    production = trained_model(engine, registry, registry.require_alias(model_name, registry.aliases.production))
    candidate_version = registry.alias_version(model_name, registry.aliases.candidate)
    candidate = trained_model(engine, registry, candidate_version) if candidate_version else None
    report = build_report(engine, require_latest(engine, name), production, candidate)
    tags = {"dagster_run_id": context.run_id, "dataset": name, "dataset_version": str(report.dataset.version)}
    with registry.start_run(f"monitor-{name}-v{report.dataset.version}", tags) as run:
        drift_png = log_report(run, report)
    save_report(engine, report_row(report, run.run_id))
    drifted = report.drifted_features
    ingest_shadow_pairs(engine, serving.open().state.folder)  # the gateways write them; app-db keeps each once
    return MaterializeResult(
        metadata={
            "metric": report.metric,
            "production_version": production.number,
            "production_score": report.production_score,
            "candidate_version": candidate.number if candidate else None,
            "candidate_score": report.candidate_score,
            "held_out_rows": report.held_out_rows,
            "drifted_features": len(drifted),
            "drift": frame_table(report.drift),
            "drift_histograms": markdown_image(drift_png, "feature histograms: training rows vs current dataset"),
            "mlflow_run_id": run.run_id,
            **shadow_summary(engine, model_name),
        },
        check_results=[
            AssetCheckResult(
                check_name="no_feature_drift",
                passed=not drifted,
                severity=AssetCheckSeverity.WARN,
                metadata={"drifted": ", ".join(drifted) or "none"},
            ),
            AssetCheckResult(
                check_name="production_quality",
                passed=report.quality_ok,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "held_out_score": report.production_score,
                    "validation_score": report.production_validation_score,
                },
            ),
        ],
    )
