"""Monitoring reports in app-db."""

from __future__ import annotations

from sqlalchemy import Engine

from mlplatform.appdb.schema import monitoring_reports


def save_report(engine: Engine, report: dict) -> int:
    with engine.begin() as conn:
        key = conn.execute(monitoring_reports.insert().values(**report)).inserted_primary_key
        assert key is not None  # an insert always has one
        return key[0]
