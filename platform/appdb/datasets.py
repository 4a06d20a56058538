"""Dataset versions in app-db: one typed table per version, registered in ``dataset_versions``.

Storing is idempotent: the same content (same hash) under the same name is the existing version, not a new one.
A version is written in one transaction (table, rows, registry row), so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import BigInteger, Column, Engine, Float, Integer, MetaData, Table, Text, func, select

from mlplatform.appdb.schema import dataset_versions
from mlplatform.datasets.sources import SourceData

ROW_ID = "row_id"
_SQL_TYPES = {"float": Float, "int": BigInteger, "str": Text}


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    content_hash: str
    rows: int
    columns: list[dict]
    target_column: str
    task_type: str
    source: str
    table_name: str
    created: bool = False  # True only for the call that stored it

    @property
    def features(self) -> list[str]:
        return [c["name"] for c in self.columns if c["name"] != self.target_column]


def content_hash(data: SourceData) -> str:
    digest = hashlib.sha256()
    digest.update(f"{data.target}|{data.task_type}|".encode())
    digest.update(data.frame.to_csv(index=False).encode())
    return digest.hexdigest()


def store_dataset(engine: Engine, data: SourceData) -> DatasetVersion:
    digest = content_hash(data)
    existing = _find(engine, dataset_versions.c.name == data.name, dataset_versions.c.content_hash == digest)
    if existing is not None:
        return existing
    columns = [{"name": c, "dtype": _dtype(data.frame[c])} for c in data.frame.columns]
    with engine.begin() as conn:
        latest = conn.execute(
            select(func.max(dataset_versions.c.version)).where(dataset_versions.c.name == data.name)
        ).scalar()
        version = (latest or 0) + 1
        table = _table(f"ds_{data.name}_v{version}", columns)
        table.create(conn)
        rows = data.frame.reset_index(drop=True)
        records = rows.assign(**{ROW_ID: range(len(rows))}).to_dict("records")
        conn.execute(table.insert(), records)
        conn.execute(
            dataset_versions.insert().values(
                name=data.name,
                version=version,
                content_hash=digest,
                rows=len(rows),
                columns=columns,
                target_column=data.target,
                task_type=data.task_type,
                source=data.source,
                table_name=table.name,
            )
        )
    stored = get_version(engine, data.name, version)
    return DatasetVersion(**{**stored.__dict__, "created": True})


def latest_version(engine: Engine, name: str) -> DatasetVersion | None:
    newest = select(func.max(dataset_versions.c.version)).where(dataset_versions.c.name == name).scalar_subquery()
    return _find(engine, dataset_versions.c.name == name, dataset_versions.c.version == newest)


def get_version(engine: Engine, name: str, version: int) -> DatasetVersion:
    found = _find(engine, dataset_versions.c.name == name, dataset_versions.c.version == version)
    if found is None:
        raise LookupError(f"dataset {name!r} has no version {version} in app-db")
    return found


def read_rows(engine: Engine, dataset: DatasetVersion) -> pd.DataFrame:
    """All rows of a version, ``row_id`` as the index, columns in their stored order."""
    table = _table(dataset.table_name, dataset.columns)
    with engine.connect() as conn:
        frame = pd.read_sql(select(table).order_by(table.c[ROW_ID]), conn, index_col=ROW_ID)
    return frame.astype({c["name"]: _PANDAS_TYPES[c["dtype"]] for c in dataset.columns})


_PANDAS_TYPES = {"float": "float64", "int": "int64", "str": "object"}


def _find(engine: Engine, *where) -> DatasetVersion | None:
    with engine.connect() as conn:
        row = conn.execute(select(dataset_versions).where(*where)).mappings().first()
    if row is None:
        return None
    fields = {k: row[k] for k in DatasetVersion.__dataclass_fields__ if k != "created"}
    return DatasetVersion(**fields)


def _dtype(series: pd.Series) -> str:
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    return "str"


def _table(name: str, columns: list[dict]) -> Table:
    return Table(
        name,
        MetaData(),
        Column(ROW_ID, Integer, primary_key=True, autoincrement=False),
        *(Column(c["name"], _SQL_TYPES[c["dtype"]]) for c in columns),
    )


def require_latest(engine: Engine, name: str) -> DatasetVersion:
    dataset = latest_version(engine, name)
    if dataset is None:
        raise LookupError(f"dataset {name!r} has no version in app-db: materialize raw_dataset for partition {name!r} first")
    return dataset
