"""The ``predictions`` table: one batch per (batch id, role), written whole or not at all.

``open_batch`` deletes the batch's previous rows and streams the new ones in the same transaction, so readers
see the old batch or the new one, a crash leaves the old one, and a re-run replaces instead of duplicating.
On PostgreSQL the rows go in as one binary COPY stream built with numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, Engine, and_, delete, func, select

from mlplatform.appdb import pgcopy
from mlplatform.appdb.engine import psycopg_connection
from mlplatform.appdb.schema import predictions


@dataclass(frozen=True)
class BatchIdentity:
    """What every row of a batch carries besides its own prediction."""

    batch_id: str
    model_role: str
    dataset: str
    dataset_version: int
    model_name: str
    model_version: int
    model_alias: str
    mlflow_run_id: str
    created_at: datetime


@dataclass
class PredictedChunk:
    row_ids: np.ndarray
    predicted_class: np.ndarray | None = None  # str labels (classification)
    predicted_value: np.ndarray | None = None  # floats (regression)
    classes: list[str] | None = None
    probabilities: np.ndarray | None = None  # rows x classes

    def __len__(self) -> int:
        return len(self.row_ids)


class _SqlWriter:
    def __init__(self, conn: Connection, identity: BatchIdentity) -> None:
        self.conn, self.identity = conn, identity

    def write(self, chunk: PredictedChunk) -> None:
        rows = pd.DataFrame({"row_id": chunk.row_ids.astype("int64")})
        rows["predicted_class"] = chunk.predicted_class if chunk.predicted_class is not None else None
        rows["predicted_value"] = chunk.predicted_value if chunk.predicted_value is not None else None
        rows["classes"] = [chunk.classes] * len(chunk) if chunk.classes else None
        rows["probabilities"] = list(chunk.probabilities.tolist()) if chunk.probabilities is not None else None
        self.conn.execute(predictions.insert(), rows.assign(**asdict(self.identity)).to_dict("records"))


class _CopyWriter:
    _COLUMNS = (
        "batch_id",
        "model_role",
        "row_id",
        "dataset",
        "dataset_version",
        "model_name",
        "model_version",
        "model_alias",
        "mlflow_run_id",
        "predicted_class",
        "predicted_value",
        "classes",
        "probabilities",
        "created_at",
    )

    def __init__(self, copy, identity: BatchIdentity) -> None:
        self.copy = copy
        i = identity
        self.constants = {
            "batch_id": pgcopy.constant("text", i.batch_id),
            "model_role": pgcopy.constant("text", i.model_role),
            "dataset": pgcopy.constant("text", i.dataset),
            "dataset_version": pgcopy.constant("int4", i.dataset_version),
            "model_name": pgcopy.constant("text", i.model_name),
            "model_version": pgcopy.constant("int4", i.model_version),
            "model_alias": pgcopy.constant("text", i.model_alias),
            "mlflow_run_id": pgcopy.constant("text", i.mlflow_run_id),
            "created_at": pgcopy.constant("timestamptz", i.created_at),
        }
        copy.write(pgcopy.HEADER)

    def write(self, chunk: PredictedChunk) -> None:
        null = pgcopy.constant("text", None)
        per_row = {
            "row_id": ("int8", chunk.row_ids.astype(np.int64)),
            "predicted_class": ("text", chunk.predicted_class if chunk.predicted_class is not None else null),
            "predicted_value": ("float8", chunk.predicted_value if chunk.predicted_value is not None else null),
            "classes": ("text[]", pgcopy.constant("text[]", chunk.classes) if chunk.classes else null),
            "probabilities": ("float8[]", chunk.probabilities if chunk.probabilities is not None else null),
        }
        fields = [per_row[c] if c in per_row else ("const", self.constants[c]) for c in self._COLUMNS]
        self.copy.write(pgcopy.encode_rows(fields, len(chunk)))

    def close(self) -> None:
        self.copy.write(pgcopy.TRAILER)


@contextmanager
def open_batch(engine: Engine, identity: BatchIdentity) -> Iterator[_SqlWriter | _CopyWriter]:
    """Replace the batch's rows with whatever is written inside the block, in one transaction."""
    with engine.begin() as conn:
        conn.execute(delete(predictions).where(_batch(identity.batch_id, identity.model_role)))
        if conn.dialect.name != "postgresql":
            yield _SqlWriter(conn, identity)
            return
        columns = ", ".join(_CopyWriter._COLUMNS)
        with psycopg_connection(conn).cursor() as cursor:
            # Queued: a psycopg thread sends while the next chunk is read and predicted (bounded queue).
            statement = f"COPY predictions ({columns}) FROM STDIN (FORMAT BINARY)"
            with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
                writer = _CopyWriter(copy, identity)
                yield writer
                writer.close()


def read_batch(engine: Engine, batch_id: str, model_role: str = "production") -> pd.DataFrame:
    with engine.connect() as conn:
        query = select(predictions).where(_batch(batch_id, model_role)).order_by(predictions.c.row_id)
        return pd.read_sql(query, conn)


def count_batch(engine: Engine, batch_id: str, model_role: str = "production") -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(_batch(batch_id, model_role))).scalar_one()


def _batch(batch_id: str, model_role: str):
    return and_(predictions.c.batch_id == batch_id, predictions.c.model_role == model_role)
