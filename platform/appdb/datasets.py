"""Dataset versions in app-db: one typed table per version, registered in ``dataset_versions``.

Storing is idempotent: the same content (same hash) under the same name is the existing version, not a new one.
A version is written in one transaction (table, rows, registry row), so a failure leaves nothing behind. On PostgreSQL
the rows go in by COPY: a CSV file as it is written when no value needs converting (``datasets.verbatim``), else
binary rows encoded here.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
)

from mlplatform.appdb import pgcopy
from mlplatform.appdb.engine import psycopg_connection
from mlplatform.appdb.schema import dataset_versions
from mlplatform.datasets.sources import SourceData, read_through
from mlplatform.datasets.verbatim import NotVerbatim, Verbatim

ROW_ID = "row_id"
_SQL_TYPES = {"float": Float, "int": BigInteger, "str": Text}
MAX_COLUMNS = {"postgresql": 1600, "sqlite": 2000}  # the backends' own limits, row_id included
_PANDAS_DTYPES = {"float": "float64", "int": "int64", "str": "object"}
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


class ContentHash:
    """The content hash of a version, fed chunk by chunk: the column header (names, types, kinds), then a hash per
    row. Feeding the rows in chunks gives the same digest as feeding them at once."""

    def __init__(self, target: str, task_type: str, columns: list[dict]) -> None:
        self._digest = hashlib.sha256()
        header = [target, task_type, *(f"{c['name']}:{_PANDAS_DTYPES[c['dtype']]}" for c in columns)]
        kinds = {c["name"]: c["kind"] for c in columns if c.get("kind", "target") != "target"}
        if any(kind != "numeric" for kind in kinds.values()):
            header += [f"{c}={k}" for c, k in kinds.items()]
        self._digest.update("|".join(header).encode())

    def update(self, chunk: pd.DataFrame) -> None:
        self._digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def content_hash(data: SourceData) -> str:
    """The hash of a source read whole (``read_all``)."""
    digest = ContentHash(data.target, data.task_type, data.columns)
    for chunk in data.chunks():
        digest.update(chunk)
    return digest.hexdigest()


def store_dataset(engine: Engine, data: SourceData) -> DatasetVersion:
    """The version holding ``data``: an existing one with the same content (made the latest again), or a new one.

    The rows stream from the source chunk by chunk into the load's transaction; a bad row in any chunk rolls it
    back, so nothing is stored. A chunk that widens a column's type starts the load again with the wider plan. On
    PostgreSQL a CSV file is first sent as written; a value that would need converting there (``NotVerbatim``)
    makes the load again on the binary path, which stores and refuses the same rows the same way."""

    def store(source: SourceData, verbatim: Verbatim | None) -> DatasetVersion:
        return store_chunks(
            engine,
            source.name,
            source.target,
            source.task_type,
            source.source,
            None,
            source.chunks(verbatim=verbatim is not None),
            columns=source.columns,
            dropped=source.dropped,
            verbatim=verbatim,
        )

    def store_fastest(source: SourceData) -> DatasetVersion:
        verbatim = source.verbatim() if engine.dialect.name == "postgresql" else None
        if verbatim is not None:
            try:
                return store(source, verbatim)
            except NotVerbatim:
                pass
        return store(source, None)

    return read_through(data, store_fastest)


def store_chunks(
    engine: Engine,
    name: str,
    target: str,
    task_type: str,
    source: str,
    digest: str | None,
    chunks: Iterable[pd.DataFrame],
    columns: list[dict] | None = None,
    dropped: dict | None = None,
    verbatim: Verbatim | None = None,
) -> DatasetVersion:
    """Write a new version from frames of rows (same columns, features then target), all or nothing.

    ``digest`` None: the content hash of the rows, computed as they are written. Loads of one dataset are
    serialised (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two concurrent loads of the
    same content produce one version. The rows are written inside a savepoint; content that is already stored is
    rolled back there and that version becomes the latest. ``verbatim``: the chunks' CSV file, sent as written.
    """
    chunks = iter(chunks)
    first = next(chunks)
    columns = columns or [{"name": c, "dtype": _dtype(first[c])} for c in first.columns]
    limit = MAX_COLUMNS.get(engine.dialect.name, MAX_COLUMNS["postgresql"])
    if len(columns) + 1 > limit:
        raise TooManyColumns(
            f"dataset {name!r} has {len(columns)} columns; app-db on {engine.dialect.name} holds at most {limit - 1}"
        )
    hasher = ContentHash(target, task_type, columns)
    with engine.connect() as conn, _load_transaction(conn, name):
        latest = conn.execute(
            select(func.max(dataset_versions.c.version)).where(dataset_versions.c.name == name)
        ).scalar()
        version = (latest or 0) + 1
        # On PostgreSQL the primary key is built once after the rows are in: far cheaper than row by row.
        table = _table(f"ds_{name}_v{version}", columns, keyed=conn.dialect.name != "postgresql")
        written = conn.begin_nested()
        rows = _write_rows(conn, table, columns, itertools.chain([first], chunks), hasher, verbatim)
        digest = digest or hasher.hexdigest()
        existing = _find_in(conn, dataset_versions.c.name == name, dataset_versions.c.content_hash == digest)
        if existing is not None:
            written.rollback()
            conn.execute(
                dataset_versions.update()
                .where(dataset_versions.c.id == existing["id"])
                .values(load_order=_next_load_order(conn, name))
            )
            return _version(existing)
        written.commit()
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


def _write_rows(
    conn: Connection,
    table: Table,
    columns: list[dict],
    chunks: Iterable[pd.DataFrame],
    hasher: ContentHash,
    verbatim: Verbatim | None,
) -> int:
    """Create ``table`` and write every chunk (hashed on the way); returns the row count."""
    table.create(conn)
    rows = 0
    numbered = (chunk.reset_index(drop=True) for chunk in chunks)
    if conn.dialect.name != "postgresql":
        for chunk in numbered:
            hasher.update(chunk)
            records = chunk.assign(**{ROW_ID: np.arange(rows, rows + len(chunk))}).astype(object)
            conn.execute(table.insert(), records.where(records.notna(), None).to_dict("records"))
            rows += len(chunk)
        return rows
    with psycopg_connection(conn).cursor() as cursor:
        if verbatim is None:
            rows = _copy_binary(cursor, table, columns, numbered, hasher)
        else:
            rows = _copy_verbatim(cursor, table, verbatim, numbered, hasher)
    conn.execute(text(f'ALTER TABLE "{table.name}" ADD PRIMARY KEY ("{ROW_ID}")'))
    return rows


def _copy_binary(
    cursor: psycopg.Cursor, table: Table, columns: list[dict], chunks: Iterable[pd.DataFrame], hasher: ContentHash
) -> int:
    names = ", ".join(f'"{n}"' for n in [ROW_ID, *(c["name"] for c in columns)])
    kinds = {"float": "nullable_float8", "int": "int8", "str": "text"}
    rows = 0
    # One binary COPY for the whole load. A thread sends each encoded chunk while the next one is read and encoded,
    # so the server and this process work at the same time; at most one chunk waits to be sent.
    with (
        cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy,
        ThreadPoolExecutor(1, thread_name_prefix="copy-writer") as sender,
    ):
        sending = sender.submit(copy.write, pgcopy.HEADER)
        for chunk in chunks:
            hasher.update(chunk)
            fields = [("int8", np.arange(rows, rows + len(chunk), dtype=np.int64))]
            fields += [(kinds[c["dtype"]], _values(chunk[c["name"]])) for c in columns]
            encoded = pgcopy.encode_rows(fields, len(chunk))
            sending.result()
            sending = sender.submit(copy.write, encoded)
            rows += len(chunk)
        sending.result()
        copy.write(pgcopy.TRAILER)
    return rows


def _copy_verbatim(
    cursor: psycopg.Cursor, table: Table, verbatim: Verbatim, chunks: Iterable[pd.DataFrame], hasher: ContentHash
) -> int:
    """The file's own bytes, numbered and sent by a thread while the same rows are checked and hashed here; the
    server parses them meanwhile. Anything PostgreSQL refuses, or a row count that differs, is ``NotVerbatim``."""
    stored = ", ".join(f'"{n}"' for n in verbatim.columns)
    statement = (
        f'COPY "{table.name}" ("{ROW_ID}", {stored}) FROM STDIN (FORMAT csv, DELIMITER \'{verbatim.delimiter}\', '
        f"NULL '', FORCE_NULL ({stored}), ENCODING 'UTF8')"
    )
    stop, rows = threading.Event(), 0
    try:
        with cursor.copy(statement) as copy, ThreadPoolExecutor(1, thread_name_prefix="copy-writer") as sender:
            sending = sender.submit(_send, copy, verbatim, stop)
            try:
                for chunk in chunks:
                    hasher.update(chunk)
                    rows += len(chunk)
                    if sending.done():
                        sending.result()  # the sender's NotVerbatim, at once
                sending.result()
            finally:
                stop.set()
    except psycopg.Error as exc:
        raise NotVerbatim(f"PostgreSQL refused the file as written: {exc.diag.message_primary}") from None
    if cursor.rowcount != rows:
        raise NotVerbatim(f"PostgreSQL read {cursor.rowcount} rows, pandas {rows}")
    return rows


def _send(copy: psycopg.Copy, verbatim: Verbatim, stop: threading.Event) -> None:
    for block in verbatim.blocks(stop):
        copy.write(block)


def _values(column: pd.Series):
    """A column's values for the binary encoder: a categorical stays one (codes and labels, no string per row)."""
    return column.array if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()


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
        conn.execution_options(stream_results=True)  # a server-side cursor: the client holds one chunk at a time
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


def _typed(frame: pd.DataFrame, columns: list[dict]) -> pd.DataFrame:
    """Stored types back: float (NaN for gaps), int, text (None for gaps)."""
    typed = frame.astype({c["name"]: _PANDAS_DTYPES[c["dtype"]] for c in columns if c["name"] in frame.columns})
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


def _table(name: str, columns: list[dict], keyed: bool = True) -> Table:
    return Table(
        name,
        MetaData(),
        Column(ROW_ID, BigInteger, primary_key=keyed, autoincrement=False, nullable=False),
        *(Column(c["name"], _SQL_TYPES[c["dtype"]]) for c in columns),
    )


def require_latest(engine: Engine, name: str) -> DatasetVersion:
    dataset = latest_version(engine, name)
    if dataset is None:
        raise LookupError(
            f"dataset {name!r} has no version in app-db: materialize raw_dataset for partition {name!r} first"
        )
    return dataset
