"""The data contract every model carries as MLflow artifacts beside the model.

``data_contract/input_schema.json`` (dataset, task_type, target_column, features: name, dtype, kind, share of
missing values in training, and the allowed categories of categorical ones; the columns dropped from the source),
``data_contract/sample_input.csv`` (up to 50 raw validation rows without the target) and
``metrics/validation_metrics.json``.
"""

from __future__ import annotations

import io
import json

import pandas as pd

from mlplatform.appdb.datasets import DatasetVersion
from mlplatform.model_registry import ModelRegistry, TrackedRun

SCHEMA_PATH = "data_contract/input_schema.json"
SAMPLE_PATH = "data_contract/sample_input.csv"
METRICS_PATH = "metrics/validation_metrics.json"
SAMPLE_ROWS = 50


def input_schema(dataset: DatasetVersion, train: pd.DataFrame) -> dict:
    kinds = dataset.kinds
    features = []
    for column in dataset.columns:
        name = column["name"]
        if name == dataset.target_column:
            continue
        values = train[name]
        feature = {**column, "kind": kinds[name], "missing_share": float(values.isna().mean())}
        if kinds[name] == "categorical":
            feature["categories"] = sorted(str(v) for v in values.dropna().unique())
        features.append(feature)
    return {
        "dataset": dataset.name,
        "dataset_version": dataset.version,
        "task_type": dataset.task_type,
        "target_column": dataset.target_column,
        "features": features,
        "dropped_columns": dataset.dropped_columns or {},
    }


def sample_input(validation: pd.DataFrame, dataset: DatasetVersion) -> pd.DataFrame:
    return validation[dataset.features].head(SAMPLE_ROWS)


def log_contract(
    run: TrackedRun, dataset: DatasetVersion, train: pd.DataFrame, validation: pd.DataFrame, validation_metrics: dict
) -> None:
    """Log the three contract artifacts to the run."""
    run.log_dict(input_schema(dataset, train), SCHEMA_PATH)
    run.log_text(sample_input(validation, dataset).to_csv(index=False), SAMPLE_PATH)
    run.log_dict(validation_metrics, METRICS_PATH)


def load_sample_input(registry: ModelRegistry, run_id: str | None) -> pd.DataFrame:
    """The sample rows with their contract types: categorical columns stay text, gaps are NaN."""
    if not run_id:
        raise LookupError("the model version has no source run, so no data_contract/sample_input.csv")
    schema = json.loads(registry.load_text(run_id, SCHEMA_PATH))
    text = {f["name"]: str for f in schema["features"] if f.get("kind", "numeric") == "categorical"}
    raw = io.StringIO(registry.load_text(run_id, SAMPLE_PATH))
    return pd.read_csv(raw, dtype=text, keep_default_na=False, na_values=[""])
