"""Log a training to MLflow: every fitted candidate's params, metrics and contract; the best one's model with
signature and input example, a plot of its validation predictions (confusion matrix or predicted vs actual) and its
per-class scores and permutation importance."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy
import pandas
import sklearn
import skops
from mlflow.models import infer_signature

from mlplatform.appdb.datasets import DatasetVersion
from mlplatform.contract import log_contract
from mlplatform.model_registry import ModelRegistry, TrackedRun
from mlplatform.plots import figure_png, importance_figure, validation_figure, validation_plot_path
from mlplatform.training.explain import feature_importance, per_class_scores
from mlplatform.training.fit import FittedCandidate

# Given explicitly: inferring them costs about 5 s per model (a subprocess per call).
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    f"scikit-learn=={sklearn.__version__}",
    f"skops=={skops.__version__}",
    f"numpy=={numpy.__version__}",
    f"pandas=={pandas.__version__}",
]
INPUT_EXAMPLE_ROWS = 5
SIGNATURE_ROWS = 1000


PER_CLASS_PATH = "metrics/per_class_scores.json"
IMPORTANCE_PATH = "metrics/permutation_importance.json"
IMPORTANCE_PLOT_PATH = "plots/permutation_importance.png"


@dataclass(frozen=True)
class Insights:
    """The best candidate's per-class scores (classification) and permutation importance, as logged to its run."""

    per_class: pandas.DataFrame | None
    importance: pandas.DataFrame
    importance_png: bytes


@dataclass(frozen=True)
class TrainingRuns:
    parent_run_id: str
    best_run_id: str
    best_model_uri: str
    best_plot_png: bytes = b""  # the best candidate's validation plot, as logged to its run
    insights: Insights | None = None


def log_training(
    registry: ModelRegistry,
    fitted: list[FittedCandidate],
    best: FittedCandidate,
    dataset: DatasetVersion,
    train,
    validation,
    tags: dict[str, str],
    metric: str,
    seed: int,
) -> TrainingRuns:
    """One parent run per training, one nested run per candidate (its parameters, validation metrics and contract),
    the best one's with its model, which is registered: the others are compared, never served, so their models
    would only fill the artifact store (as MLflow's own autologging keeps only a search's best estimator)."""
    with registry.start_run(f"train-{dataset.name}-v{dataset.version}", tags) as parent:
        for candidate in fitted:
            with registry.start_run(candidate.algorithm, tags, parent=parent) as run:
                log_candidate(run, candidate, dataset, train, validation)
                if candidate is best:
                    best_run_id, best_uri = run.run_id, log_model(run, candidate, dataset, train)
                    best_png = log_validation_plot(run, candidate, dataset, validation)
                    insights = log_insights(run, candidate, dataset, validation, metric, seed)
        parent.log_metrics({f"best_validation_{k}": v for k, v in best.metrics.items()})
        parent.set_tags({"best_algorithm": best.algorithm})
    return TrainingRuns(parent.run_id, best_run_id, best_uri, best_png, insights)


def log_insights(
    run: TrackedRun, candidate: FittedCandidate, dataset: DatasetVersion, validation, metric: str, seed: int
) -> Insights:
    """Log per-class scores and permutation importance (table and plot) of the candidate on the validation rows."""
    features, target = validation[dataset.features], validation[dataset.target_column]
    per_class = None
    if dataset.task_type == "classification":
        per_class = per_class_scores(target, candidate.pipeline.predict(features))
        run.log_table(per_class, PER_CLASS_PATH)
    importance = feature_importance(candidate.pipeline, features, target, metric, seed)
    run.log_table(importance, IMPORTANCE_PATH)
    figure = importance_figure(importance, f"{candidate.algorithm}: permutation importance on {metric}")
    png = figure_png(figure)
    run.log_png(png, IMPORTANCE_PLOT_PATH)
    return Insights(per_class, importance, png)


def log_candidate(run: TrackedRun, candidate: FittedCandidate, dataset: DatasetVersion, train, validation) -> None:
    """Log the candidate's parameters, validation metrics and contract to the run."""
    estimator = candidate.pipeline.named_steps["model"]
    run.log_params(
        {
            "algorithm": candidate.algorithm,
            "estimator": type(estimator).__name__,
            **{f"model.{k}": v for k, v in estimator.get_params(deep=False).items() if _loggable(v)},
        }
    )
    run.log_metrics(
        {
            **{f"validation_{k}": v for k, v in candidate.metrics.items()},
            "train_rows": len(train),
            "validation_rows": len(validation),
        }
    )
    log_contract(run, dataset, train, validation, {"algorithm": candidate.algorithm, **candidate.metrics})


def log_model(run: TrackedRun, candidate: FittedCandidate, dataset: DatasetVersion, train) -> str:
    """Log the candidate's pipeline as an MLflow model with signature and input example; returns its source URI."""
    example = train[dataset.features].head(INPUT_EXAMPLE_ROWS)
    typed = train[dataset.features].head(SIGNATURE_ROWS)  # enough rows that a sparse column shows its type
    import skops.io  # noqa: PLC0415 - about 2 s to import (it scans scikit-learn): paid by training alone

    return run.log_sklearn_model(
        candidate.pipeline,
        signature=infer_signature(typed, candidate.pipeline.predict(typed)),
        input_example=example,
        pip_requirements=PIP_REQUIREMENTS,
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(candidate.pipeline)),
    )


def log_validation_plot(run: TrackedRun, candidate: FittedCandidate, dataset: DatasetVersion, validation) -> bytes:
    """Log the candidate's validation plot to the run; returns the same picture as PNG bytes."""
    predicted = candidate.pipeline.predict(validation[dataset.features])
    metric = next(iter(candidate.metrics))
    title = f"{candidate.algorithm} on {len(validation)} validation rows ({metric} {candidate.metrics[metric]:.3f})"
    figure = validation_figure(dataset.task_type, validation[dataset.target_column], predicted, title)
    png = figure_png(figure)
    run.log_png(png, validation_plot_path(dataset.task_type))
    return png


def _loggable(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
