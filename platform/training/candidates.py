"""The candidate pipelines, from raw columns: preprocessing (imputation, encoding, scaling) travels inside each
scikit-learn pipeline, so it is part of the logged model.

The set depends on the table's size: kernel SVMs (cost grows with the square of the rows) only on small tables,
random forests up to medium ones, HistGradientBoosting (categories and gaps handled natively) always.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, SVR

from mlplatform.training.categories import MISSING

SVM_MAX_ROWS = 5_000
FOREST_MAX_ROWS = 20_000
MAX_ONE_HOT = 50  # per column; rarer categories share one "infrequent" column
MAX_GRADIENT_BOOSTING_CATEGORIES = 250  # HistGradientBoosting takes at most 255 bins per feature
UNKNOWN_CODE = -1  # an unseen category: HistGradientBoosting treats negative codes as missing


def candidate_pipelines(
    task_type: str, seed: int, numeric: list[str] | None = None, categorical: list[str] | None = None, rows: int = 0
) -> dict[str, Pipeline]:
    """``numeric`` and ``categorical`` name the raw feature columns (``numeric`` None: every column, as given)."""
    linear, forest, kernel, boosted = _estimators(task_type, seed)
    estimators = {linear[0]: linear[1]}
    if rows <= FOREST_MAX_ROWS:
        estimators["random_forest"] = forest
    if rows <= SVM_MAX_ROWS:
        estimators[kernel[0]] = kernel[1]
    pipelines = {name: _encoded(numeric, categorical or [], estimator) for name, estimator in estimators.items()}
    pipelines["hist_gradient_boosting"] = _boosted(numeric, categorical or [], boosted)
    return pipelines


def _estimators(task_type: str, seed: int) -> tuple:
    if task_type == "classification":
        return (
            ("logistic_regression", LogisticRegression(max_iter=5000)),
            RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=-1),
            # Calibrated so that the SVM, like the others, gives probabilities (SVC(probability=True) is deprecated).
            ("svm", CalibratedClassifierCV(SVC(random_state=seed), cv=3)),
            HistGradientBoostingClassifier(random_state=seed),
        )
    if task_type == "regression":
        return (
            ("ridge", Ridge()),
            RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=-1),
            ("svr", SVR()),
            HistGradientBoostingRegressor(random_state=seed),
        )
    raise ValueError(f"unknown task type {task_type!r}")


def _categories(encoder) -> Pipeline:
    """Gaps (None from app-db, NaN from CSV or JSON) become one category, then ``encoder``."""
    return Pipeline(
        [
            ("none", SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING)),
            ("nan", SimpleImputer(missing_values=np.nan, strategy="constant", fill_value=MISSING)),
            ("encode", encoder),
        ]
    )


def _encoded(numeric: list[str] | None, categorical: list[str], estimator) -> Pipeline:
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    if numeric is None:
        return Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", estimator)])
    one_hot = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT, sparse_output=False)
    prepare = ColumnTransformer(
        [("numeric", numbers, numeric), ("categorical", _categories(one_hot), categorical)],
        sparse_threshold=0,
    )
    return Pipeline([("prepare", prepare), ("model", estimator)])


def _boosted(numeric: list[str] | None, categorical: list[str], estimator) -> Pipeline:
    if numeric is None:
        return Pipeline([("model", estimator)])
    ordinal = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=UNKNOWN_CODE,
        max_categories=MAX_GRADIENT_BOOSTING_CATEGORIES,
    )
    prepare = ColumnTransformer(
        [("categorical", _categories(ordinal), categorical), ("numeric", "passthrough", numeric)],
        sparse_threshold=0,
    )
    estimator.set_params(categorical_features=list(range(len(categorical))) or None)
    return Pipeline([("prepare", prepare), ("model", estimator)])
