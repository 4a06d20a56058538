"""The candidate pipelines: preprocessing travels inside each scikit-learn pipeline, so it is part of the model."""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR


def candidate_pipelines(task_type: str, seed: int) -> dict[str, Pipeline]:
    if task_type == "classification":
        estimators = {
            "logistic_regression": LogisticRegression(max_iter=5000),
            "random_forest": RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=-1),
            # Calibrated so that the SVM, like the others, gives probabilities (SVC(probability=True) is deprecated).
            "svm": CalibratedClassifierCV(SVC(random_state=seed), cv=3),
        }
    elif task_type == "regression":
        estimators = {
            "ridge": Ridge(),
            "random_forest": RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=-1),
            "svr": SVR(),
        }
    else:
        raise ValueError(f"unknown task type {task_type!r}")
    return {name: _pipeline(estimator) for name, estimator in estimators.items()}


def _pipeline(estimator) -> Pipeline:
    return Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", estimator)])
