"""CSV files sent to PostgreSQL as written (``datasets.verbatim``): the table and content hash of the binary path,
values that would need converting loaded on the binary path instead, bad values refused with the same message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, select

from mlplatform.appdb.datasets import content_hash, read_rows, store_chunks, store_dataset
from mlplatform.appdb.engine import engine_for
from mlplatform.appdb.schema import dataset_versions
from mlplatform.datasets.csv_file import CHUNK_ROWS
from mlplatform.datasets.sources import DatasetError, SourceRequest, read_all, read_request
from mlplatform.datasets.verbatim import NotVerbatim


@pytest.fixture
def engine(postgres_admin):
    from postgres import fresh_database

    with fresh_database(postgres_admin) as url:
        engine = engine_for(url)
        yield engine
        engine.dispose()


def _table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    amount = rng.gamma(2.0, 30.0, rows).round(2)
    return pd.DataFrame(
        {
            "amount": np.where(rng.random(rows) < 0.1, np.nan, amount),
            "ratio": (rng.standard_normal(rows) * 100).round(10),  # up to 15 digits: parsed exactly by both
            "quantity": rng.integers(-5, 50, rows),
            "channel": rng.choice(["web", "store", 'say "hi"', "a,b", "two\nlines", ""], rows),
            "member": rng.choice(["true", "false"], rows),
            "label": (amount > 60).astype(int) + (rng.random(rows) < 0.3),
        }
    )


def _write(frame: pd.DataFrame, path: Path, **options) -> str:
    frame.to_csv(path, index=False, **options)
    return str(path)


def _load(engine, path: str, name: str, verbatim: bool):
    """One load on the path asked for: as written (``NotVerbatim`` if it cannot be) or binary."""
    data = read_request(SourceRequest(path, "label", name))
    sent = data.verbatim() if verbatim else None
    assert (sent is not None) == verbatim
    return store_chunks(
        engine,
        data.name,
        data.target,
        data.task_type,
        data.source,
        None,
        data.chunks(verbatim=verbatim),
        columns=data.columns,
        dropped=data.dropped,
        verbatim=sent,
    )


def _nothing_stored(engine) -> bool:
    with engine.connect() as conn:
        versions = conn.execute(select(dataset_versions)).all()
    return versions == [] and not [t for t in inspect(engine).get_table_names() if t.startswith("ds_")]


@pytest.mark.parametrize("options", [{}, {"sep": ";", "lineterminator": "\r\n"}], ids=["comma", "semicolon_crlf"])
def test_a_file_sent_as_written_stores_the_binary_paths_table_and_hash(engine, tmp_path, options):
    path = _write(_table(300), tmp_path / "orders.csv", **options)
    sent = _load(engine, path, "sent", verbatim=True)
    encoded = _load(engine, path, "encoded", verbatim=False)
    assert sent.rows == encoded.rows == 300 and sent.columns == encoded.columns
    assert sent.content_hash == encoded.content_hash == content_hash(read_all(SourceRequest(path, "label", "x")))
    pd.testing.assert_frame_equal(read_rows(engine, sent), read_rows(engine, encoded))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("amount", "NA"),  # a gap token: pandas reads a gap, PostgreSQL text
        ("channel", " web"),  # stripped on the binary path
        ("member", "True"),  # lower-cased on the binary path
        ("amount", "0.1234567890123456"),  # 16 digits: pandas' parser may round otherwise than PostgreSQL's
        ("amount", "1.5e3"),
        ("label", "1.0"),  # a whole number PostgreSQL refuses as int8
        (None, None),  # a row without values, which the binary path skips
    ],
)
def test_values_that_need_converting_load_on_the_binary_path(engine, tmp_path, column, value):
    frame = _table(300).astype(object)
    if column is None:
        frame.loc[7] = [None] * frame.shape[1]
    else:
        frame.loc[7, column] = value
    path = _write(frame, tmp_path / "orders.csv")
    with pytest.raises(NotVerbatim):
        _load(engine, path, "sent", verbatim=True)
    assert _nothing_stored(engine)
    stored = store_dataset(engine, read_request(SourceRequest(path, "label", "sent")))
    encoded = _load(engine, path, "encoded", verbatim=False)
    assert stored.content_hash == encoded.content_hash
    pd.testing.assert_frame_equal(read_rows(engine, stored), read_rows(engine, encoded))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("amount", "inf", "column 'amount' holds an infinite value on line {line}"),
        ("label", "", "target column 'label' is empty on 1 rows, the first on line {line}"),
    ],
)
def test_a_bad_value_in_a_late_chunk_sent_as_written_is_refused_the_same_way(engine, tmp_path, column, value, message):
    late = CHUNK_ROWS + 10
    frame = _table(CHUNK_ROWS + 50).astype({column: object})
    frame.loc[late, column] = value
    path = _write(frame, tmp_path / "late.csv")
    with pytest.raises(DatasetError) as raised:
        _load(engine, path, "sent", verbatim=True)
    assert message.format(line=late + 2) in str(raised.value) and path in str(raised.value)
    assert _nothing_stored(engine)
