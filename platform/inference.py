"""Batch inference: a model's answers for dataset rows, as rows of the ``predictions`` table."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from mlplatform.appdb.datasets import DatasetVersion
from mlplatform.quality.holdout import TrainedModel


def batch_id(dataset: DatasetVersion, trained: TrainedModel, role: str) -> str:
    """Deterministic: the same dataset version, model version and role is the same batch."""
    return f"{dataset.name}-v{dataset.version}-{trained.version.name}-v{trained.number}-{role}"


def predict_rows(
    trained: TrainedModel, rows: pd.DataFrame, dataset: DatasetVersion, alias: str, role: str
) -> pd.DataFrame:
    features = rows[trained.dataset.features]
    model = trained.model
    predicted = model.predict(features)
    out = pd.DataFrame(index=rows.index)
    if dataset.task_type == "classification":
        out["predicted_class"] = pd.Series(predicted, index=rows.index).astype(str)
        out["predicted_value"] = None
        classes = [str(c) for c in model.classes_]
        out["probabilities"] = [dict(zip(classes, map(float, p))) for p in model.predict_proba(features)]
    else:
        out["predicted_class"] = None
        out["predicted_value"] = predicted.astype(float)
        out["probabilities"] = None
    return out.assign(
        dataset=dataset.name,
        dataset_version=dataset.version,
        row_id=rows.index.astype(int),
        model_name=trained.version.name,
        model_version=trained.number,
        model_alias=alias,
        model_role=role,
        mlflow_run_id=trained.version.run_id,
        created_at=datetime.now(timezone.utc),
    ).reset_index(drop=True)
