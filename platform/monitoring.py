"""The monitoring report: production (and candidate) on held-out rows, plus feature drift since training."""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
import pandas as pd
from sqlalchemy import Engine

from mlplatform.appdb.datasets import DatasetVersion, read_rows
from mlplatform.plots import drift_histograms, figure_png
from mlplatform.quality.drift import feature_drift
from mlplatform.quality.holdout import TrainedModel, score_on, training_rows
from mlplatform.training.scoring import HIGHER_IS_BETTER, PRIMARY_METRIC
from mlplatform.training.split import held_out

QUALITY_TOLERANCE = 0.05  # production may be this much (relative) worse than its own validation score
DRIFT_TABLE_PATH = "monitoring/feature_drift.json"
DRIFT_PLOT_PATH = "monitoring/feature_drift.png"


@dataclass
class MonitoringReport:
    dataset: DatasetVersion
    metric: str
    production: TrainedModel
    candidate: TrainedModel | None
    production_score: float
    candidate_score: float | None
    production_validation_score: float
    held_out_rows: int
    drift: pd.DataFrame
    reference: pd.DataFrame = field(repr=False)  # production's training rows, the drift reference
    current: pd.DataFrame = field(repr=False)  # all rows of the dataset version the report is about

    @property
    def drifted_features(self) -> list[str]:
        return self.drift.loc[self.drift["drifted"], "feature"].tolist()

    @property
    def quality_ok(self) -> bool:
        if HIGHER_IS_BETTER[self.metric]:
            return self.production_score >= self.production_validation_score * (1 - QUALITY_TOLERANCE)
        return self.production_score <= self.production_validation_score * (1 + QUALITY_TOLERANCE)


def build_report(engine: Engine, dataset: DatasetVersion, production: TrainedModel, candidate: TrainedModel | None) -> MonitoringReport:
    frame = read_rows(engine, dataset)
    production_train = training_rows(engine, production, (dataset, frame))
    seen = [production_train] + ([training_rows(engine, candidate, (dataset, frame))] if candidate else [])
    rows = held_out(frame, *seen)
    if rows.empty:
        raise ValueError(f"dataset {dataset.name} v{dataset.version} has no rows that the models were not trained on")
    metric = PRIMARY_METRIC[dataset.task_type]
    production_score = score_on(production, rows, dataset, metric)
    if production_score is None:
        raise ValueError(f"production v{production.number} cannot score dataset {dataset.name} v{dataset.version}")
    features = [f for f in production.dataset.features if f in frame.columns]
    return MonitoringReport(
        dataset=dataset,
        metric=metric,
        production=production,
        candidate=candidate,
        production_score=production_score,
        candidate_score=score_on(candidate, rows, dataset, metric) if candidate else None,
        production_validation_score=float(production.version.tags["metric_value"]),
        held_out_rows=len(rows),
        drift=feature_drift(production_train, frame, features),
        reference=production_train,
        current=frame,
    )


def log_report(report: MonitoringReport) -> bytes:
    """Log to the active MLflow run: scores, PSI per feature, the drift table and the drift histograms.

    Returns the histograms as PNG bytes, the same picture the run has at ``DRIFT_PLOT_PATH``.
    """
    mlflow.log_metrics({"held_out_rows": report.held_out_rows, f"production_{report.metric}": report.production_score})
    if report.candidate_score is not None:
        mlflow.log_metric(f"candidate_{report.metric}", report.candidate_score)
    mlflow.log_metrics({f"psi.{r.feature}": r.psi for r in report.drift.itertuples()})
    mlflow.log_metric("drifted_features", len(report.drifted_features))
    mlflow.log_table(report.drift, DRIFT_TABLE_PATH)
    figure = drift_histograms(report.reference, report.current, report.drift)
    mlflow.log_figure(figure, DRIFT_PLOT_PATH)
    return figure_png(figure)


def report_row(report: MonitoringReport, mlflow_run_id: str) -> dict:
    """The report as a row of app-db's ``monitoring_reports``."""
    return {
        "dataset": report.dataset.name,
        "dataset_version": report.dataset.version,
        "model_name": report.production.version.name,
        "production_version": report.production.number,
        "candidate_version": report.candidate.number if report.candidate else None,
        "metric": report.metric,
        "production_score": report.production_score,
        "candidate_score": report.candidate_score,
        "held_out_rows": report.held_out_rows,
        "drifted_features": report.drifted_features,
        "drift": report.drift.to_dict("records"),
        "mlflow_run_id": mlflow_run_id,
    }
