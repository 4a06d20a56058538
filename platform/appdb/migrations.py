"""Versioned app-db migrations: each runs once, in order, in one transaction, recorded in ``mlplatform_schema_version``.

A migration is frozen once released: change the schema by appending a new one, never by editing an old one.
On PostgreSQL a transaction-scoped advisory lock makes concurrent starters (webserver, daemon, run workers)
apply each migration exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)

from mlplatform.appdb import schema

_LOCK_KEY = 0x6D6C706C  # "mlpl"
_versions = Table(
    "mlplatform_schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(255), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial_tables(conn: Connection) -> None:
    for table in (schema.dataset_versions, schema.predictions, schema.monitoring_reports):
        table.create(conn, checkfirst=True)


def _alias_history(conn: Connection) -> None:
    schema.alias_history.create(conn, checkfirst=True)


def _dataset_load_order(conn: Connection) -> None:
    # Migration 1 creates dataset_versions from the current schema, so a fresh app-db has the columns already.
    present = {c["name"] for c in inspect(conn).get_columns("dataset_versions")}
    if "dropped_columns" not in present:
        conn.execute(text("ALTER TABLE dataset_versions ADD COLUMN dropped_columns JSON"))
    if "load_order" not in present:
        conn.execute(text("ALTER TABLE dataset_versions ADD COLUMN load_order INTEGER"))
    conn.execute(text("UPDATE dataset_versions SET load_order = version WHERE load_order IS NULL"))


def _shadow_pairs(conn: Connection) -> None:
    schema.shadow_pairs.create(conn, checkfirst=True)


MIGRATIONS = [
    Migration(1, "dataset_versions, predictions, monitoring_reports", _initial_tables),
    Migration(2, "alias_history", _alias_history),
    Migration(3, "dataset_versions: dropped_columns, load_order (latest load)", _dataset_load_order),
    Migration(4, "shadow_pairs (gateway shadow traffic)", _shadow_pairs),
]


def upgrade(engine: Engine) -> int:
    """Apply every pending migration; returns the schema version now in place."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        _versions.create(conn, checkfirst=True)
        current = conn.execute(select(func.coalesce(func.max(_versions.c.version), 0))).scalar_one()
        for migration in MIGRATIONS:
            if migration.version > current:
                migration.apply(conn)
                conn.execute(_versions.insert().values(version=migration.version, description=migration.description))
                current = migration.version
    return current


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, _versions.name):
            return 0
        return conn.execute(select(func.coalesce(func.max(_versions.c.version), 0))).scalar_one()
