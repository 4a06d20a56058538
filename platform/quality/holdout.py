"""A registered version with what it was trained on, and its score on rows it has never seen."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from sqlalchemy import Engine

from mlplatform.appdb.datasets import DatasetVersion, get_version, read_rows
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.training.scoring import score
from mlplatform.training.split import SplitSpec, split


@dataclass
class TrainedModel:
    version: ModelVersion
    model: object
    dataset: DatasetVersion  # the dataset version it was trained on

    @property
    def number(self) -> int:
        return int(self.version.version)


def trained_model(engine: Engine, mlflow_res: MlflowTracking, version: ModelVersion) -> TrainedModel:
    """Load a registered version with the dataset version it records in its tags."""
    dataset = get_version(engine, version.tags["dataset"], int(version.tags["dataset_version"]))
    return TrainedModel(version, mlflow_res.load_model(version), dataset)


def training_rows(engine: Engine, trained: TrainedModel, latest: tuple[DatasetVersion, pd.DataFrame]) -> pd.DataFrame:
    """Recompute the rows the version was trained on from its dataset version and recorded split.

    ``latest`` is the dataset version the caller already read: most models were trained on it, so it is not read again.
    """
    dataset = trained.dataset
    loaded, frame = latest
    if (loaded.name, loaded.version) != (dataset.name, dataset.version):
        frame = read_rows(engine, dataset)
    train, _ = split(frame, dataset.target_column, dataset.task_type, SplitSpec.from_tags(trained.version.tags))
    return train


def score_on(trained: TrainedModel, rows: pd.DataFrame, dataset: DatasetVersion, metric: str) -> float | None:
    """The model's ``metric`` on ``rows``; None when the rows lack a feature the model needs."""
    features = trained.dataset.features
    if not set(features) <= set(rows.columns) or dataset.target_column != trained.dataset.target_column:
        return None
    predicted = trained.model.predict(rows[features])
    return score(dataset.task_type, rows[dataset.target_column], predicted)[metric]
