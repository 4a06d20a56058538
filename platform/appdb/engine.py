"""One SQLAlchemy engine per app-db URI, with the schema migrated to the current version."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine, event

from mlplatform.appdb.migrations import upgrade


@lru_cache(maxsize=8)
def engine_for(uri: str) -> Engine:
    engine = create_engine(uri, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Several processes (Dagster webserver, daemon, run workers, the CLI) share the embedded file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
