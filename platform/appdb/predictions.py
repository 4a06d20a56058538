"""The ``predictions`` table: one batch per (dataset version, model version, alias); re-running replaces it."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, delete, func, select

from mlplatform.appdb.schema import predictions


def replace_batch(engine: Engine, rows: pd.DataFrame, batch_id: str) -> int:
    """Delete the batch and write ``rows`` in one transaction: readers see the old batch or the new one."""
    records = rows.assign(batch_id=batch_id).to_dict("records")
    with engine.begin() as conn:
        conn.execute(delete(predictions).where(predictions.c.batch_id == batch_id))
        if records:
            conn.execute(predictions.insert(), records)
    return len(records)


def read_batch(engine: Engine, batch_id: str) -> pd.DataFrame:
    with engine.connect() as conn:
        query = select(predictions).where(predictions.c.batch_id == batch_id).order_by(predictions.c.row_id)
        return pd.read_sql(query, conn)


def count_batch(engine: Engine, batch_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(predictions.c.batch_id == batch_id)).scalar_one()
