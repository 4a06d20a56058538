"""The monitoring report: production (and candidate) on held-out rows, plus feature drift since training."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine

from mlplatform.appdb.datasets import DatasetVersion
from mlplatform.model_registry import TrackedRun
from mlplatform.plots import drift_histograms, figure_png
from mlplatform.quality.drift import drift_records, feature_drift
from mlplatform.quality.holdout import TrainedModel, evaluate_held_out
from mlplatform.training.scoring import HIGHER_IS_BETTER

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
    reference: pd.DataFrame = field(repr=False)  # production's training rows (a sample), the drift reference
    current: pd.DataFrame = field(repr=False)  # rows of the dataset version the report is about (a sample)

    @property
    def drifted_features(self) -> list[str]:
        return self.drift.loc[self.drift["drifted"], "feature"].tolist()

    @property
    def quality_ok(self) -> bool:
        return quality_holds(self.metric, self.production_score, self.production_validation_score)


def quality_holds(metric: str, held_out_score: float, validation_score: float) -> bool:
    """Whether a held-out score is within ``QUALITY_TOLERANCE`` of the model's own validation score (the
    ``production_quality`` check, and the quality trigger of retraining)."""
    if HIGHER_IS_BETTER[metric]:
        return held_out_score >= validation_score * (1 - QUALITY_TOLERANCE)
    return held_out_score <= validation_score * (1 + QUALITY_TOLERANCE)


def build_report(
    engine: Engine, dataset: DatasetVersion, production: TrainedModel, candidate: TrainedModel | None
) -> MonitoringReport:
    evaluation = evaluate_held_out(engine, dataset, [production] + ([candidate] if candidate else []))
    production_score = evaluation.scores[0]
    if production_score is None:
        raise ValueError(f"production v{production.number} cannot score dataset {dataset.name} v{dataset.version}")
    frame, production_train = evaluation.frame, evaluation.reference
    features = [f for f in production.dataset.features if f in frame.columns]
    return MonitoringReport(
        dataset=dataset,
        metric=evaluation.metric,
        production=production,
        candidate=candidate,
        production_score=production_score,
        candidate_score=evaluation.scores[1] if candidate else None,
        production_validation_score=float(production.version.tags["metric_value"]),
        held_out_rows=evaluation.held_out_rows,
        drift=feature_drift(production_train, frame, features, production.dataset.kinds),
        reference=production_train,
        current=frame,
    )


def log_report(run: TrackedRun, report: MonitoringReport) -> bytes:
    """Log to the run: scores, PSI per feature, the drift table and the drift histograms.

    Returns the histograms as PNG bytes, the same picture the run has at ``DRIFT_PLOT_PATH``.
    """
    scores = {f"production_{report.metric}": report.production_score}
    if report.candidate_score is not None:
        scores[f"candidate_{report.metric}"] = report.candidate_score
    run.log_metrics(
        {
            **scores,
            "held_out_rows": report.held_out_rows,
            "drifted_features": len(report.drifted_features),
            **{f"psi.{r.feature}": r.psi for r in report.drift.itertuples()},
        }
    )
    run.log_table(report.drift, DRIFT_TABLE_PATH)
    figure = drift_histograms(report.reference, report.current, report.drift)
    png = figure_png(figure)
    run.log_png(png, DRIFT_PLOT_PATH)
    return png


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
        "drift": drift_records(report.drift),
        "mlflow_run_id": mlflow_run_id,
    }
