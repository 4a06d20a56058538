"""Monitoring reports in app-db."""

from __future__ import annotations

from sqlalchemy import Engine, select

from mlplatform.appdb.schema import monitoring_reports


def save_report(engine: Engine, report: dict) -> int:
    with engine.begin() as conn:
        key = conn.execute(monitoring_reports.insert().values(**report)).inserted_primary_key
        assert key is not None  # an insert always has one
        return key[0]


def latest_report(engine: Engine, dataset: str) -> dict | None:
    """The newest monitoring report of ``dataset`` (None before the first)."""
    query = (
        select(monitoring_reports)
        .where(monitoring_reports.c.dataset == dataset)
        .order_by(monitoring_reports.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)
