"""A registered version with what it was trained on, and models scored on rows none of them has seen.

The promotion gate and the monitoring report both judge models this way: ``evaluate_held_out`` is the one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from sqlalchemy import Engine

from mlplatform.appdb.datasets import DatasetVersion, get_version, read_rows
from mlplatform.model_registry import ModelRegistry
from mlplatform.training.scoring import PRIMARY_METRIC, score_model
from mlplatform.training.split import SplitSpec, held_out, split


@dataclass
class TrainedModel:
    version: ModelVersion
    model: Any  # the scikit-learn pipeline
    dataset: DatasetVersion  # the dataset version it was trained on

    @property
    def number(self) -> int:
        return int(self.version.version)


@dataclass
class HeldOutEvaluation:
    """Models scored on the rows of ``dataset`` that none of them was trained on."""

    dataset: DatasetVersion
    metric: str
    scores: list[float | None]  # one per model, in the order given; None: the model cannot score this dataset
    held_out_rows: int
    training: list[pd.DataFrame] = field(repr=False)  # each model's training rows, in the same order
    frame: pd.DataFrame = field(repr=False)  # all rows of the dataset version


def trained_model(engine: Engine, registry: ModelRegistry, version: ModelVersion) -> TrainedModel:
    """Load a registered version with the dataset version it records in its tags."""
    dataset = get_version(engine, version.tags["dataset"], int(version.tags["dataset_version"]))
    return TrainedModel(version, registry.load_model(version), dataset)


def evaluate_held_out(engine: Engine, dataset: DatasetVersion, models: list[TrainedModel]) -> HeldOutEvaluation:
    """Read the dataset version once, recompute every model's training rows, score each on the rest, with the
    primary metric recorded on the first model (the default for versions that record none)."""
    frame = read_rows(engine, dataset)
    training = [_training_rows(engine, model, dataset, frame) for model in models]
    rows = held_out(frame, *training)
    if rows.empty:
        raise ValueError(f"dataset {dataset.name} v{dataset.version} has no rows that the models were not trained on")
    metric = models[0].version.tags.get("metric") or PRIMARY_METRIC[dataset.task_type]
    scores = [_score_on(model, rows, dataset, metric) for model in models]
    return HeldOutEvaluation(dataset, metric, scores, len(rows), training, frame)


def _training_rows(engine: Engine, trained: TrainedModel, loaded: DatasetVersion, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the version was trained on, from its dataset version and recorded split (``frame`` holds the rows of
    ``loaded``, which most models were trained on: it is not read again)."""
    dataset = trained.dataset
    if (loaded.name, loaded.version) != (dataset.name, dataset.version):
        frame = read_rows(engine, dataset)
    train, _ = split(frame, dataset.target_column, dataset.task_type, SplitSpec.from_tags(trained.version.tags))
    return train


def _score_on(trained: TrainedModel, rows: pd.DataFrame, dataset: DatasetVersion, metric: str) -> float | None:
    """The model's ``metric`` on ``rows``; None when the rows lack a feature the model needs."""
    features = trained.dataset.features
    if not set(features) <= set(rows.columns) or dataset.target_column != trained.dataset.target_column:
        return None
    return score_model(dataset.task_type, trained.model, rows[features], rows[dataset.target_column])[metric]
