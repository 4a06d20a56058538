"""Fit every candidate on the training rows and score it on the validation rows (no MLflow here)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlplatform.training.candidates import candidate_pipelines
from mlplatform.training.scoring import HIGHER_IS_BETTER, score_model


@dataclass
class FittedCandidate:
    algorithm: str
    pipeline: Pipeline
    metrics: dict[str, float]


def fit_candidates(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    features: list[str],
    target: str,
    task_type: str,
    seed: int,
    kinds: dict[str, str] | None = None,
) -> list[FittedCandidate]:
    """``kinds`` (feature -> "numeric" | "categorical"): the raw columns' types; None: every feature numeric."""
    numeric = [f for f in features if kinds[f] == "numeric"] if kinds else None
    categorical = [f for f in features if kinds[f] == "categorical"] if kinds else []
    fitted = []
    # One OpenMP thread: HistGradientBoosting's threads wait for each other at every step, and on a busy two-core
    # machine two of them took 60 s for a 50,000-row table with categories that one thread fits in 6 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        for algorithm, pipeline in candidate_pipelines(task_type, seed, numeric, categorical, len(train)).items():
            pipeline.fit(train[features], train[target])
            metrics = score_model(task_type, pipeline, validation[features], validation[target])
            fitted.append(FittedCandidate(algorithm, pipeline, metrics))
    return fitted


def best_candidate(fitted: list[FittedCandidate], metric: str) -> FittedCandidate:
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    # Stable: on a tie the first (simplest) algorithm wins.
    return max(fitted, key=lambda c: sign * c.metrics[metric])
