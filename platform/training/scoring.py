"""Metrics per task type, which direction is better, and the default primary metric of a table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PRIMARY_METRIC = {"classification": "accuracy", "regression": "rmse"}
IMBALANCED_METRIC = "balanced_accuracy"  # the classification default when the classes are imbalanced
IMBALANCE_RATIO = 2.0  # largest class / smallest class above this: imbalanced
METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "rmse": False,
    "mae": False,
    "r2": True,
}


def default_metric(task_type: str, labels: pd.Series) -> str:
    """Accuracy on balanced classes, balanced accuracy on imbalanced ones, RMSE for regression."""
    if task_type != "classification":
        return PRIMARY_METRIC[task_type]
    counts = labels.value_counts()
    return IMBALANCED_METRIC if counts.max() > IMBALANCE_RATIO * counts.min() else PRIMARY_METRIC[task_type]


def check_metric(task_type: str, metric: str) -> str:
    if metric not in METRICS[task_type]:
        raise ValueError(f"metric {metric!r} does not apply to {task_type}: use one of {', '.join(METRICS[task_type])}")
    return metric


def score(task_type: str, y_true, y_pred, probabilities=None, classes=None) -> dict[str, float]:
    """Every metric of the task type (``roc_auc`` only with ``probabilities``, columns in ``classes`` order)."""
    # Imported here: scikit-learn costs about 1 s, which every process loading the code location would pay.
    from sklearn import metrics  # noqa: PLC0415

    if task_type == "classification":
        scores = {
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
            "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro")),
        }
        if probabilities is not None:
            scores["roc_auc"] = _roc_auc(y_true, np.asarray(probabilities), list(classes))
        return scores
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }


def score_model(task_type: str, model, features: pd.DataFrame, y_true) -> dict[str, float]:
    """Score a fitted model (a classifier's probabilities give ``roc_auc``)."""
    predicted = model.predict(features)
    if task_type == "classification" and hasattr(model, "predict_proba"):
        return score(task_type, y_true, predicted, model.predict_proba(features), model.classes_)
    return score(task_type, y_true, predicted)


def _roc_auc(y_true, probabilities: np.ndarray, classes: list) -> float:
    from sklearn import metrics  # noqa: PLC0415 - as in score

    present = set(pd.Series(y_true).unique())
    if len(present) < 2:
        return float("nan")
    if len(classes) == 2:
        return float(metrics.roc_auc_score(np.asarray(y_true) == classes[1], probabilities[:, 1]))
    return float(metrics.roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro", labels=classes))


def better(metric: str, a: float, b: float, margin: float = 0.0) -> bool:
    """True when ``a`` beats ``b`` by more than ``margin`` on ``metric``."""
    gain = a - b if HIGHER_IS_BETTER[metric] else b - a
    return gain > margin and not math.isclose(gain, margin, rel_tol=1e-9, abs_tol=1e-12)
