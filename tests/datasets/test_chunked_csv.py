"""CSV files bigger than one chunk: types checked on every chunk, a bad row in a late chunk refused with its line
and nothing stored, a column widened by a late chunk typed as if read whole, and the streamed hash unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, select

from mlplatform.appdb.datasets import content_hash, read_rows, store_dataset
from mlplatform.appdb.engine import engine_for
from mlplatform.appdb.schema import dataset_versions
from mlplatform.datasets.csv_file import CHUNK_ROWS
from mlplatform.datasets.sources import DatasetError, SourceRequest, read_all, read_request

ROWS = CHUNK_ROWS * 2 + 5_000  # three chunks
LATE = CHUNK_ROWS * 2 + 1_000  # a row in the third chunk


def _table(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 30.0, rows).round(2),
            "code": rng.integers(0, 40, rows),
            "channel": rng.choice(["web", "store", "phone"], rows),
            "member": rng.choice(["true", "false"], rows),
            "order_id": np.arange(rows) * 7 + 3,
            "label": rng.integers(0, 3, rows),
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        yield engine_for(f"sqlite:///{tmp_path / 'app.db'}")
        return
    from postgres import fresh_database

    with fresh_database(request.getfixturevalue("postgres_admin")) as url:
        engine = engine_for(url)
        yield engine
        engine.dispose()


def _nothing_stored(engine) -> bool:
    with engine.connect() as conn:
        versions = conn.execute(select(dataset_versions)).all()
    return versions == [] and not [t for t in inspect(engine).get_table_names() if t.startswith("ds_")]


def test_a_bad_value_in_a_late_chunk_stores_nothing_and_names_the_line(engine, tmp_path):
    frame = _table().astype({"amount": object})
    frame.loc[LATE, "amount"] = "inf"
    path = _write(frame, tmp_path / "late_inf.csv")
    with pytest.raises(DatasetError) as raised:
        store_dataset(engine, read_request(SourceRequest(path, "label", "orders")))
    assert f"column 'amount' holds an infinite value on line {LATE + 2}" in str(raised.value)
    assert path in str(raised.value)
    assert _nothing_stored(engine)


def test_a_target_gap_in_a_late_chunk_stores_nothing(engine, tmp_path):
    frame = _table().astype({"label": object})
    frame.loc[[LATE, LATE + 3], "label"] = None
    path = _write(frame, tmp_path / "late_gap.csv")
    with pytest.raises(DatasetError, match=rf"target column 'label' is empty on 2 rows, the first on line {LATE + 2}"):
        store_dataset(engine, read_request(SourceRequest(path, "label", "orders")))
    assert _nothing_stored(engine)


def test_late_chunks_widen_types_as_if_the_file_were_read_whole(engine, tmp_path):
    frame = _table().astype({"code": object, "member": object})
    frame.loc[LATE, "code"] = "X1"  # text in a column of numbers: categorical
    frame.loc[LATE, "member"] = "maybe"  # not a boolean any more: categories as written
    frame.loc[LATE, "order_id"] = frame.loc[0, "order_id"]  # a repeat: not an ID, a numeric feature
    path = _write(frame, tmp_path / "widened.csv")
    stored = store_dataset(engine, read_request(SourceRequest(path, "label", "orders")))
    assert stored.kinds == {
        "amount": "numeric",
        "code": "categorical",
        "channel": "categorical",
        "member": "categorical",
        "order_id": "numeric",
    }
    assert stored.dropped_columns == {} and stored.rows == ROWS
    rows = read_rows(engine, stored)
    assert rows["code"].iloc[0] == str(frame["code"].iloc[0]) and rows["code"].iloc[LATE] == "X1"
    assert rows["order_id"].iloc[LATE] == float(frame["order_id"].iloc[0])


def test_an_id_column_spanning_chunks_is_left_out_and_a_late_class_makes_a_regression(tmp_path):
    frame = _table()
    frame.loc[LATE:, "label"] = np.arange(len(frame) - LATE) + 3  # more than 20 distinct values: regression
    data = read_all(SourceRequest(_write(frame, tmp_path / "ids.csv"), "label", "orders"))
    assert data.dropped == {"order_id": "unique per row (an ID column)"}
    assert data.task_type == "regression" and data.frame["label"].dtype == "float64"
    assert len(data.frame) == ROWS


def test_the_streamed_hash_is_the_hash_of_the_whole_table(engine, tmp_path):
    path = _write(_table(), tmp_path / "orders.csv")
    stored = store_dataset(engine, read_request(SourceRequest(path, "label", "orders")))
    assert stored.content_hash == content_hash(read_all(SourceRequest(path, "label", "orders")))
    again = store_dataset(engine, read_request(SourceRequest(path, "label", "orders")))
    assert (again.version, again.created) == (1, False)
