"""The data contract every model carries as MLflow artifacts beside the model.

``data_contract/input_schema.json`` (dataset, task_type, target_column, features), ``data_contract/sample_input.csv``
(up to 50 validation rows without the target) and ``metrics/validation_metrics.json``.
"""

from __future__ import annotations

import io

import pandas as pd

from mlplatform.appdb.datasets import DatasetVersion
from mlplatform.model_registry import ModelRegistry, TrackedRun

SCHEMA_PATH = "data_contract/input_schema.json"
SAMPLE_PATH = "data_contract/sample_input.csv"
METRICS_PATH = "metrics/validation_metrics.json"
SAMPLE_ROWS = 50


def input_schema(dataset: DatasetVersion) -> dict:
    return {
        "dataset": dataset.name,
        "dataset_version": dataset.version,
        "task_type": dataset.task_type,
        "target_column": dataset.target_column,
        "features": [c for c in dataset.columns if c["name"] != dataset.target_column],
    }


def sample_input(validation: pd.DataFrame, dataset: DatasetVersion) -> pd.DataFrame:
    return validation[dataset.features].head(SAMPLE_ROWS)


def log_contract(run: TrackedRun, dataset: DatasetVersion, validation: pd.DataFrame, validation_metrics: dict) -> None:
    """Log the three contract artifacts to the run."""
    run.log_dict(input_schema(dataset), SCHEMA_PATH)
    run.log_text(sample_input(validation, dataset).to_csv(index=False), SAMPLE_PATH)
    run.log_dict(validation_metrics, METRICS_PATH)


def load_sample_input(registry: ModelRegistry, run_id: str | None) -> pd.DataFrame:
    if not run_id:
        raise LookupError("the model version has no source run, so no data_contract/sample_input.csv")
    return pd.read_csv(io.StringIO(registry.load_text(run_id, SAMPLE_PATH)))
