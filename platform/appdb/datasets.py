"""Dataset versions in app-db: one typed table per version, registered in ``dataset_versions``.

Storing is idempotent: the same content (same hash) under the same name is the existing version, not a new one.
A version is written in one transaction (table, rows, registry row), so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, Engine, Float, MetaData, Table, Text, func, select, text

from mlplatform.appdb import pgcopy
from mlplatform.appdb.engine import psycopg_connection
from mlplatform.appdb.schema import dataset_versions
from mlplatform.datasets.sources import SourceData

ROW_ID = "row_id"
_SQL_TYPES = {"float": Float, "int": BigInteger, "str": Text}
MAX_COLUMNS = {"postgresql": 1600, "sqlite": 2000}  # the backends' own limits, row_id included
_LOCK_NAMESPACE = 0x6D6C6473  # "mlds": the advisory lock of one dataset's loads on PostgreSQL


class TooManyColumns(ValueError):
    """A dataset wider than the app-db backend can hold."""


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    content_hash: str
    rows: int
    columns: list[dict]  # {"name", "dtype", "kind"}: features ("numeric" | "categorical"), then the target ("target")
    target_column: str
    task_type: str
    source: str
    table_name: str
    dropped_columns: dict | None = None  # left-out source column -> why
    created: bool = False  # True only for the call that stored it

    @property
    def features(self) -> list[str]:
        return [c["name"] for c in self.columns if c["name"] != self.target_column]

    @property
    def kinds(self) -> dict[str, str]:
        """Feature -> "numeric" | "categorical" (versions stored before types were recorded: by dtype)."""
        return {
            c["name"]: c.get("kind", "categorical" if c["dtype"] == "str" else "numeric")
            for c in self.columns
            if c["name"] != self.target_column
        }


def content_hash(data: SourceData) -> str:
    digest = hashlib.sha256()
    header = [data.target, data.task_type, *(f"{c}:{t}" for c, t in data.frame.dtypes.astype(str).items())]
    if any(kind != "numeric" for kind in data.kinds.values()):
        header += [f"{c}={k}" for c, k in data.kinds.items()]
    digest.update("|".join(header).encode())
    digest.update(pd.util.hash_pandas_object(data.frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def store_dataset(engine: Engine, data: SourceData) -> DatasetVersion:
    """The version holding ``data``: an existing one with the same content (made the latest again), or a new one."""
    columns = [{"name": c, "dtype": _dtype(data.frame[c]), "kind": data.kinds.get(c, "target")} for c in data.frame]
    return store_chunks(
        engine,
        data.name,
        data.target,
        data.task_type,
        data.source,
        content_hash(data),
        [data.frame],
        columns=columns,
        dropped=data.dropped,
    )


def store_chunks(
    engine: Engine,
    name: str,
    target: str,
    task_type: str,
    source: str,
    digest: str,
    chunks: Iterable[pd.DataFrame],
    columns: list[dict] | None = None,
    dropped: dict | None = None,
) -> DatasetVersion:
    """Write a new version from frames of rows (same columns, features then target), all or nothing.

    Loads of one dataset are serialised (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two
    concurrent loads of the same content produce one version. Content that is already stored is not written
    again: that version becomes the latest.
    """
    chunks = iter(chunks)
    first = next(chunks)
    columns = columns or [{"name": c, "dtype": _dtype(first[c])} for c in first.columns]
    limit = MAX_COLUMNS.get(engine.dialect.name, MAX_COLUMNS["postgresql"])
    if len(columns) + 1 > limit:
        raise TooManyColumns(
            f"dataset {name!r} has {len(columns)} columns; app-db on {engine.dialect.name} holds at most {limit - 1}"
        )
    with engine.connect() as conn, _load_transaction(conn, name):
        existing = _find_in(conn, dataset_versions.c.name == name, dataset_versions.c.content_hash == digest)
        if existing is not None:
            conn.execute(
                dataset_versions.update()
                .where(dataset_versions.c.id == existing["id"])
                .values(load_order=_next_load_order(conn, name))
            )
            return _version(existing)
        latest = conn.execute(
            select(func.max(dataset_versions.c.version)).where(dataset_versions.c.name == name)
        ).scalar()
        version = (latest or 0) + 1
        table = _table(f"ds_{name}_v{version}", columns)
        table.create(conn)
        rows = 0
        for chunk in itertools.chain([first], chunks):
            row_ids = np.arange(rows, rows + len(chunk), dtype=np.int64)
            _insert_rows(conn, table, chunk.reset_index(drop=True).assign(**{ROW_ID: row_ids}), columns)
            rows += len(chunk)
        conn.execute(
            dataset_versions.insert().values(
                name=name,
                version=version,
                content_hash=digest,
                rows=rows,
                columns=columns,
                target_column=target,
                task_type=task_type,
                source=source,
                table_name=table.name,
                dropped_columns=dropped or {},
                load_order=_next_load_order(conn, name),
            )
        )
    stored = get_version(engine, name, version)
    return DatasetVersion(**{**stored.__dict__, "created": True})


@contextmanager
def _load_transaction(conn: Connection, name: str) -> Iterator[None]:
    """One transaction that no other load of ``name`` runs beside."""
    if conn.dialect.name == "sqlite":
        conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, hashtext(:name))"), {"ns": _LOCK_NAMESPACE, "name": name}
            )
        yield


def _next_load_order(conn: Connection, name: str) -> int:
    latest = conn.execute(
        select(func.max(dataset_versions.c.load_order)).where(dataset_versions.c.name == name)
    ).scalar()
    return (latest or 0) + 1


def _insert_rows(conn: Connection, table: Table, frame: pd.DataFrame, columns: list[dict]) -> None:
    if conn.dialect.name != "postgresql":
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        conn.execute(table.insert(), records)
        return
    kinds = {"float": "nullable_float8", "int": "int8", "str": "text"}
    fields = [("int8", frame[ROW_ID].to_numpy())]
    fields += [(kinds[c["dtype"]], frame[c["name"]].to_numpy()) for c in columns]
    names = ", ".join(f'"{n}"' for n in [ROW_ID, *(c["name"] for c in columns)])
    with psycopg_connection(conn).cursor() as cursor:
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
            copy.write(pgcopy.HEADER)
            copy.write(pgcopy.encode_rows(fields, len(frame)))
            copy.write(pgcopy.TRAILER)


def iter_feature_chunks(
    engine: Engine, dataset: DatasetVersion, features: list[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """The rows of a version in chunks (``row_id`` index, ``features`` typed as stored: float or text, None for a
    text gap), never all in memory at once. All-numeric features on PostgreSQL take the binary array path."""
    table = _table(dataset.table_name, dataset.columns)
    dtypes = {c["name"]: c["dtype"] for c in dataset.columns}
    if engine.dialect.name == "postgresql" and all(dtypes[f] == "float" for f in features):
        yield from _array_chunks(engine, dataset, features, chunk_rows)
        return
    query = select(table.c[ROW_ID], *(table.c[f] for f in features)).order_by(table.c[ROW_ID])
    with engine.connect() as conn:
        for chunk in pd.read_sql(query, conn, index_col=ROW_ID, chunksize=chunk_rows):
            yield _typed(_plain_names(chunk), dataset.columns)


def _array_chunks(
    engine: Engine, dataset: DatasetVersion, features: list[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    # One round trip per chunk: each column comes back as one binary array (array_send), decoded by numpy, instead
    # of a million per-row messages. Row ids are dense (0..rows-1), so a chunk is a primary-key range.
    columns = [f'"{ROW_ID}"::int8', *(f"COALESCE(\"{f}\", 'NaN')::float8" for f in features)]
    aggregates = ", ".join(f"array_send(array_agg(c{i}))" for i in range(len(columns)))
    selected = ", ".join(f"{c} AS c{i}" for i, c in enumerate(columns))
    query = (
        f'SELECT {aggregates} FROM (SELECT {selected} FROM "{dataset.table_name}" '
        f'WHERE "{ROW_ID}" >= %s AND "{ROW_ID}" < %s ORDER BY "{ROW_ID}") AS chunk'
    )
    raw = engine.raw_connection()
    try:
        connection = psycopg_connection(raw)
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for start in range(0, dataset.rows, chunk_rows):
            arrays = connection.execute(query, (start, start + chunk_rows), binary=True).fetchone()
            if arrays is None or arrays[0] is None:
                continue
            frame = pd.DataFrame({f: pgcopy.decode_array(arrays[i + 1], "float8") for i, f in enumerate(features)})
            frame.index = pd.Index(pgcopy.decode_array(arrays[0], "int8"), name=ROW_ID)
            yield frame
        raw.commit()
    finally:
        raw.close()


def latest_version(engine: Engine, name: str) -> DatasetVersion | None:
    """The version loaded last (content loaded again becomes the latest again)."""
    newest = select(func.max(dataset_versions.c.load_order)).where(dataset_versions.c.name == name).scalar_subquery()
    return _find(engine, dataset_versions.c.name == name, dataset_versions.c.load_order == newest)


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
    return _typed(_plain_names(frame), dataset.columns)


_PANDAS_TYPES = {"float": "float64", "int": "int64", "str": "object"}


def _typed(frame: pd.DataFrame, columns: list[dict]) -> pd.DataFrame:
    """Stored types back: float (NaN for gaps), int, text (None for gaps)."""
    typed = frame.astype({c["name"]: _PANDAS_TYPES[c["dtype"]] for c in columns if c["name"] in frame.columns})
    for c in columns:
        if c["dtype"] == "str" and c["name"] in typed.columns:
            typed[c["name"]] = typed[c["name"]].where(typed[c["name"]].notna(), None)
    return typed


def _plain_names(frame: pd.DataFrame) -> pd.DataFrame:
    # SQLAlchemy names columns with a str subclass, which scikit-learn does not take as feature names.
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _find(engine: Engine, *where) -> DatasetVersion | None:
    with engine.connect() as conn:
        row = _find_in(conn, *where)
    return None if row is None else _version(row)


def _find_in(conn: Connection, *where):
    return conn.execute(select(dataset_versions).where(*where)).mappings().first()


def _version(row) -> DatasetVersion:
    return DatasetVersion(**{k: row[k] for k in DatasetVersion.__dataclass_fields__ if k != "created"})


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
        Column(ROW_ID, BigInteger, primary_key=True, autoincrement=False),
        *(Column(c["name"], _SQL_TYPES[c["dtype"]]) for c in columns),
    )


def require_latest(engine: Engine, name: str) -> DatasetVersion:
    dataset = latest_version(engine, name)
    if dataset is None:
        raise LookupError(
            f"dataset {name!r} has no version in app-db: materialize raw_dataset for partition {name!r} first"
        )
    return dataset
