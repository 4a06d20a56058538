"""One SQLAlchemy engine per app-db URI, with the schema migrated to the current version."""

from __future__ import annotations

from functools import lru_cache

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import PoolProxiedConnection

from mlplatform.appdb.migrations import upgrade


@lru_cache(maxsize=8)
def engine_for(uri: str) -> Engine:
    engine = create_engine(uri, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine


def psycopg_connection(connection: Connection | PoolProxiedConnection) -> psycopg.Connection:
    """The psycopg 3 connection under a SQLAlchemy one: binary COPY and array reads speak its API."""
    pooled = connection.connection if isinstance(connection, Connection) else connection
    driver = pooled.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"app-db needs the psycopg (3) driver for COPY, got {type(driver).__module__}")
    return driver


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record) -> None:
    # Several processes (Dagster webserver, daemon, run workers, the CLI) share the embedded file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
