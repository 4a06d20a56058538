"""Data checks on a stored dataset version: typed schema, nulls, target presence (pure: assets and tests share them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mlplatform.appdb.datasets import DatasetVersion


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def dataset_checks(stored: pd.DataFrame, dataset: DatasetVersion) -> list[CheckOutcome]:
    return [_typed_schema(stored, dataset), _no_nulls(stored, dataset), _target_present(stored, dataset)]


def _typed_schema(stored: pd.DataFrame, dataset: DatasetVersion) -> CheckOutcome:
    expected = [c["name"] for c in dataset.columns]
    kinds = dataset.kinds
    untyped = (
        [f for f in dataset.features if not _has_kind(stored[f], kinds[f])] if list(stored.columns) == expected else []
    )
    passed = bool(list(stored.columns) == expected and not untyped)
    return CheckOutcome(
        "typed_schema",
        passed,
        "stored columns match the recorded schema; numeric features are floats, categorical ones text",
        {"columns": len(expected), "mistyped_features": ", ".join(untyped) or "none"},
    )


def _has_kind(values: pd.Series, kind: str) -> bool:
    if kind == "numeric":
        return pd.api.types.is_float_dtype(values)
    return pd.api.types.is_object_dtype(values) and bool(values.dropna().map(type).eq(str).all())


def _no_nulls(stored: pd.DataFrame, dataset: DatasetVersion) -> CheckOutcome:
    nulls = stored.isna().sum()
    empty = [c for c in stored.columns if nulls[c] == len(stored)]
    passed = bool(nulls.get(dataset.target_column, 0) == 0) and not empty
    return CheckOutcome(
        "no_nulls",
        passed,
        "the target has no nulls and no column is entirely null (feature gaps are imputed by the pipelines)",
        {
            "null_cells": int(nulls.sum()),
            "target_nulls": int(nulls.get(dataset.target_column, 0)),
            "empty_columns": ", ".join(empty) or "none",
        },
    )


def _target_present(stored: pd.DataFrame, dataset: DatasetVersion) -> CheckOutcome:
    target = dataset.target_column
    present = target in stored.columns
    classes = int(stored[target].nunique()) if present else 0
    passed = bool(present and (dataset.task_type != "classification" or classes >= 2))
    return CheckOutcome(
        "target_present",
        passed,
        "the target column exists and, for classification, holds at least two classes",
        {"target": target, "task_type": dataset.task_type, "distinct_values": classes},
    )
