"""Metrics per task type and which direction is better."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics

PRIMARY_METRIC = {"classification": "accuracy", "regression": "rmse"}
HIGHER_IS_BETTER = {"accuracy": True, "f1_macro": True, "rmse": False, "mae": False, "r2": True}


def score(task_type: str, y_true, y_pred) -> dict[str, float]:
    if task_type == "classification":
        return {
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
            "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro")),
        }
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }


def better(metric: str, a: float, b: float, margin: float = 0.0) -> bool:
    """True when ``a`` beats ``b`` by more than ``margin`` on ``metric``."""
    gain = a - b if HIGHER_IS_BETTER[metric] else b - a
    return gain > margin and not math.isclose(gain, margin, rel_tol=1e-9, abs_tol=1e-12)
