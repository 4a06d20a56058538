"""Shadow pairs from the gateways' record files into app-db: each record once, across rotation, a line cut
mid-write ingested once whole; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine

from mlplatform.appdb.migrations import upgrade
from mlplatform.appdb.shadow_pairs import ingest_shadow_pairs, shadow_summary
from mlplatform.serving import shadow
from mlplatform.serving.shadow import RECORDS, Mirrored, PairRecords

from postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    with fresh_database(request.getfixturevalue("postgres_admin")) as url:
        engine = create_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def test_records_are_ingested_once_across_rotation_and_a_cut_line_waits(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(shadow, "MAX_RECORD_BYTES", 1500)  # a few records per file: rotation happens below
    folder = tmp_path / "serving" / "mlflow-serve-m-production"
    folder.mkdir(parents=True)
    pairs = PairRecords("m", "Production", folder, counted=lambda record: None, dropped=lambda reason: None)
    asked = Mirrored("http://127.0.0.1:9/invocations", "challenger", "2", "1", b"{}", "application/json", b"", 0.002)
    outcomes = [(0.004, 200, None, True)] * 3 + [(0.006, 200, None, False)] + [(0.5, None, "TimeoutError", False)]
    for outcome in outcomes:
        pairs.record(asked, *outcome)
    assert (folder / f"{RECORDS}.1").exists()  # rotated once: both files hold records
    line = json.dumps({**json.loads((folder / f"{RECORDS}.1").read_text().splitlines()[0]), "id": "written-late"})
    with open(folder / RECORDS, "a") as records:
        records.write(line[:20])  # a gateway caught mid-write
        records.flush()
        assert ingest_shadow_pairs(engine, folder.parent) == 5
        records.write(line[20:] + "\n")
    assert ingest_shadow_pairs(engine, folder.parent) == 1
    assert ingest_shadow_pairs(engine, folder.parent) == 0
    summary = shadow_summary(engine, "m")
    assert (summary["shadow_pairs"], summary["shadow_errors"], summary["shadow_agreement_rate"]) == (6, 1, 0.8)
    assert summary["shadow_p50_ms"] == 4.0 and summary["shadow_production_p50_ms"] == 2.0
    assert shadow_summary(engine, "other")["shadow_pairs"] == 0
