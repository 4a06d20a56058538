"""A table or a query behind any SQLAlchemy URL, read as a dataset source."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError


def read_sql_source(url: str, table: str | None, query: str | None) -> tuple[pd.DataFrame, str, str, str]:
    """Returns the rows (index: row number + 1, like file lines), a description for messages, the default dataset
    name and the recorded source (the URL without its password, plus the table or query)."""
    from mlplatform.datasets.sources import DatasetError, sql_name

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatasetError("the dataset URL is not a SQLAlchemy URL (dialect+driver://user@host/database)") from None
    shown = parsed.render_as_string(hide_password=True)
    if bool(table) == bool(query):
        raise DatasetError(f"database {shown}: give exactly one of --table NAME or --query SQL")
    what = f"table {table!r}" if table else "query"
    origin = f"database {shown} {what}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if table:
                if not inspect(conn).has_table(table):
                    raise DatasetError(f"{origin}: no such table")
                frame = pd.read_sql_table(table, conn)
            else:
                frame = pd.read_sql(text(query or ""), conn)
    except SQLAlchemyError as exc:
        raise DatasetError(f"{origin} cannot be read: {type(getattr(exc, 'orig', None) or exc).__name__}") from None
    finally:
        engine.dispose()
    if frame.empty:
        raise DatasetError(f"{origin} has no rows")
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    default_name = sql_name(table or parsed.database or "query")[:40]
    return frame, origin, default_name, f"{shown} {what if table else 'query: ' + (query or '')}"
