"""Shadow pairs in app-db: the gateways' record files (``mlplatform.serving.shadow``) ingested, each record once,
and the summary the monitoring report gives of them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from mlplatform.appdb.schema import shadow_pairs
from mlplatform.serving.shadow import RECORDS

SUMMARY_PAIRS = 10_000  # the summary covers the newest pairs of a model, at most this many
_BATCH = 1_000


def ingest_shadow_pairs(engine: Engine, serving_folder: Path) -> int:
    """Insert the records of every gateway's files under ``serving_folder`` that app-db does not hold yet; a line
    cut by a gateway mid-write is left for the next time. Returns how many records were new."""
    insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(shadow_pairs)
    count = select(func.count()).select_from(shadow_pairs)
    with engine.connect() as conn:
        before = conn.execute(count).scalar_one()
    for path in sorted(serving_folder.glob(f"*/{RECORDS}*")):
        rows = list(_records(path))
        with engine.begin() as conn:
            for start in range(0, len(rows), _BATCH):
                conn.execute(insert.on_conflict_do_nothing(), rows[start : start + _BATCH])
    with engine.connect() as conn:
        return conn.execute(count).scalar_one() - before


def _records(path: Path):
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:  # rotated away between the listing and the read: the .1 file has it
        return
    for line in lines:
        try:
            record = json.loads(line)
            yield {**record, "recorded_at": datetime.fromisoformat(record["recorded_at"])}
        except (ValueError, KeyError, TypeError):
            continue


def shadow_summary(engine: Engine, model: str) -> dict:
    """Agreement rate, counts and median latencies of the model's newest shadow pairs (no pairs: counts of 0)."""
    query = (
        select(shadow_pairs.c.agreement, shadow_pairs.c.production_ms, shadow_pairs.c.shadow_ms)
        .where(shadow_pairs.c.model_name == model)
        .order_by(shadow_pairs.c.recorded_at.desc())
        .limit(SUMMARY_PAIRS)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    compared = [row.agreement for row in rows if row.agreement is not None]
    answered = [row.shadow_ms for row in rows if row.agreement is not None]
    return {
        "shadow_pairs": len(rows),
        "shadow_errors": len(rows) - len(compared),
        "shadow_agreement_rate": sum(compared) / len(compared) if compared else None,
        "shadow_production_p50_ms": float(np.median([row.production_ms for row in rows])) if rows else None,
        "shadow_p50_ms": float(np.median(answered)) if answered else None,
    }
