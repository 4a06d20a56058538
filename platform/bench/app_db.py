"""The app-db the data-path benchmarks (``bench load``, ``bench inference``) measure: PostgreSQL only."""

from __future__ import annotations

from sqlalchemy import Engine, make_url

from mlplatform.appdb.engine import engine_for


def postgresql_engine(uri: str, bench: str) -> Engine:
    """app-db at ``uri``; any other store ends the command with what to set, decided on the URL before anything is
    opened (the embedded default's SQLite file may not even exist)."""
    if make_url(uri).get_backend_name() != "postgresql":
        raise SystemExit(f"bench {bench} measures the PostgreSQL path: set APP_DB_URI=postgresql://...")
    return engine_for(uri)
