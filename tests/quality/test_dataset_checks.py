"""The three data checks on a stored dataset version: typed schema, nulls, target presence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlplatform.appdb.datasets import DatasetVersion
from mlplatform.quality.dataset_checks import dataset_checks


def version(task_type: str = "classification") -> DatasetVersion:
    target_dtype = "int" if task_type == "classification" else "float"
    return DatasetVersion(
        name="toy",
        version=1,
        content_hash="0" * 64,
        rows=4,
        columns=[
            {"name": "a", "dtype": "float"},
            {"name": "b", "dtype": "float"},
            {"name": "y", "dtype": target_dtype},
        ],
        target_column="y",
        task_type=task_type,
        source="test",
        table_name="ds_toy_v1",
    )


def good_frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, np.nan, 1.5, 2.0], "y": [0, 1, 0, 1]})


def outcomes(frame: pd.DataFrame, dataset: DatasetVersion | None = None) -> dict:
    return {o.name: o for o in dataset_checks(frame, dataset or version())}


def test_good_frame_passes_every_check():
    result = outcomes(good_frame())
    assert list(result) == ["typed_schema", "no_nulls", "target_present"]
    assert all(o.passed for o in result.values())
    assert result["typed_schema"].metadata == {"columns": 3, "mistyped_features": "none"}
    assert result["no_nulls"].metadata == {"null_cells": 1, "target_nulls": 0, "empty_columns": "none"}
    assert result["target_present"].metadata == {"target": "y", "task_type": "classification", "distinct_values": 2}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f[["b", "a", "y"]], id="columns-reordered"),
        pytest.param(lambda f: f.drop(columns="b"), id="column-missing"),
        pytest.param(lambda f: f.assign(extra=1.0), id="extra-column"),
    ],
)
def test_typed_schema_fails_when_columns_differ(change):
    result = outcomes(change(good_frame()))
    assert result["typed_schema"].passed is False


@pytest.mark.parametrize(
    "values, dtype",
    [(["1", "2", "x", "4"], object), ([1, 2, 3, 4], "int64")],
)
def test_typed_schema_fails_on_non_float_feature(values, dtype):
    frame = good_frame().assign(a=pd.Series(values, dtype=dtype))
    result = outcomes(frame)
    assert result["typed_schema"].passed is False
    assert result["typed_schema"].metadata["mistyped_features"] == "a"
    assert result["no_nulls"].passed and result["target_present"].passed


def test_no_nulls_fails_on_null_target():
    frame = good_frame().assign(y=[0.0, np.nan, 1.0, 1.0])
    result = outcomes(frame)
    # ``is False``: assets/raw_dataset.py hands ``passed`` to Dagster's AssetCheckResult, which accepts only a bool.
    assert result["no_nulls"].passed is False
    assert result["no_nulls"].metadata["target_nulls"] == 1
    assert result["no_nulls"].metadata["null_cells"] == 2


def test_no_nulls_fails_on_entirely_null_feature():
    frame = good_frame().assign(b=np.nan)
    result = outcomes(frame)
    assert result["no_nulls"].passed is False
    assert result["no_nulls"].metadata["empty_columns"] == "b"
    assert result["no_nulls"].metadata["target_nulls"] == 0
    assert result["typed_schema"].passed  # an all-null float column is still typed


def test_target_present_fails_without_target_column():
    result = outcomes(good_frame().drop(columns="y"))
    assert result["target_present"].passed is False
    assert result["target_present"].metadata["distinct_values"] == 0
    assert result["typed_schema"].passed is False


def test_target_present_fails_on_single_class():
    result = outcomes(good_frame().assign(y=[1, 1, 1, 1]))
    assert result["target_present"].passed is False
    assert result["target_present"].metadata["distinct_values"] == 1
    assert result["typed_schema"].passed and result["no_nulls"].passed


def test_single_value_regression_target_is_present():
    frame = good_frame().assign(y=[2.5, 2.5, 2.5, 2.5])
    result = outcomes(frame, version("regression"))
    assert result["target_present"].passed is True
    assert result["target_present"].metadata["task_type"] == "regression"
