"""One SQLAlchemy engine per app-db URI, with the schema migrated to the current version."""

from __future__ import annotations

import logging
from functools import lru_cache

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import PoolProxiedConnection

from mlplatform.appdb.migrations import upgrade

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def engine_for(uri: str) -> Engine:
    engine = create_engine(normalized_uri(uri), future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    upgrade(engine)
    return engine


def normalized_uri(uri: str) -> str:
    """app-db speaks psycopg 3 (binary COPY, array reads): a psycopg2 URL (the old stack's
    ``postgresql+psycopg2://``) is given the psycopg driver, with a note in the log."""
    url = make_url(uri)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() == "psycopg":
        return uri
    log.warning(
        "app-db URL uses the %s driver; using psycopg (3) instead, which binary COPY needs", url.get_driver_name()
    )
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


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
    # SQLAlchemy emits BEGIN itself (below): pysqlite's own would commit before CREATE TABLE, so a failed load
    # would leave its table behind.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    """``BEGIN``, or what the connection asks for (``BEGIN IMMEDIATE`` for a dataset load: one writer at a time)."""
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
