"""Dataset loads are all-or-nothing and versions behave: a killed load leaves no trace, concurrent loads of the
same content make one version, A/B/A makes A the latest again, and both PostgreSQL drivers load at COPY speed."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from tables import customer_table, write_csv

from mlplatform.appdb.datasets import TooManyColumns, latest_version, read_rows, store_dataset
from mlplatform.appdb.engine import engine_for
from mlplatform.appdb.schema import dataset_versions
from mlplatform.datasets.sources import SourceRequest, read_request, read_source

CHILD = Path(__file__).with_name("load_child.py")


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db_uri(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    from postgres import fresh_database

    with fresh_database(request.getfixturevalue("postgres_admin")) as url:
        yield url
        engine_for(url).dispose()


def _csv(tmp_path: Path, seed: int = 0, rows: int = 400) -> str:
    return str(write_csv(customer_table(rows, seed), tmp_path / f"customers_{seed}_{rows}.csv"))


def _child(uri: str, csv: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), uri, csv, "churned", "customers", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _versions(engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return conn.execute(select(dataset_versions.c.version, dataset_versions.c.table_name)).all()


def _dataset_tables(engine) -> list[str]:
    return [t for t in inspect(engine).get_table_names() if t.startswith("ds_")]


def test_a_load_killed_midway_leaves_no_trace_and_the_retry_works(app_db_uri, tmp_path):
    csv = _csv(tmp_path, rows=2000)
    child = _child(app_db_uri, csv, "--hang")
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == "writing", child.stderr.read() if child.stderr else ""
    finally:
        child.kill()
        child.wait(timeout=30)
    engine = engine_for(app_db_uri)
    assert _versions(engine) == [] and _dataset_tables(engine) == []
    stored = store_dataset(engine, read_source(csv, "churned", "customers"))
    assert (stored.version, stored.created, stored.rows) == (1, True, 2000)
    assert _dataset_tables(engine) == ["ds_customers_v1"]


def test_concurrent_loads_of_the_same_content_make_one_version(app_db_uri, tmp_path):
    csv = _csv(tmp_path, rows=3000)
    engine_for(app_db_uri)  # migrated before the children race
    children = [_child(app_db_uri, csv) for _ in range(3)]
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        outcomes.append(out.split())
    assert sorted(outcomes) == [["1", "False"], ["1", "False"], ["1", "True"]]
    engine = engine_for(app_db_uri)
    assert _versions(engine) == [(1, "ds_customers_v1")]


def test_a_then_b_then_a_makes_a_the_latest_again(app_db_uri, tmp_path):
    engine = engine_for(app_db_uri)
    a, b = (
        read_source(_csv(tmp_path, 0), "churned", "customers"),
        read_source(_csv(tmp_path, 1), "churned", "customers"),
    )
    assert (store_dataset(engine, a).version, store_dataset(engine, b).version) == (1, 2)
    assert latest_version(engine, "customers").version == 2
    again = store_dataset(engine, a)
    assert (again.version, again.created) == (1, False)
    assert latest_version(engine, "customers").version == 1
    assert store_dataset(engine, b).version == 2 and latest_version(engine, "customers").version == 2


def test_categories_and_gaps_are_stored_as_text_and_real_nulls(app_db_uri, tmp_path):
    engine = engine_for(app_db_uri)
    data = read_source(_csv(tmp_path), "churned", "customers")
    stored = store_dataset(engine, data)
    rows = read_rows(engine, stored)
    assert {c["name"]: (c["dtype"], c["kind"]) for c in stored.columns}["plan"] == ("str", "categorical")
    assert stored.dropped_columns == {"customer_id": "unique per row (an ID column)"}
    assert rows["plan"].isna().sum() == data.frame["plan"].isna().sum() > 0
    assert rows["tenure_months"].isna().sum() == data.frame["tenure_months"].isna().sum() > 0
    with engine.connect() as conn:
        nulls = conn.exec_driver_sql('SELECT count(*) FROM "ds_customers_v1" WHERE "tenure_months" IS NULL').scalar()
    assert nulls == data.frame["tenure_months"].isna().sum()
    assert _gaps_as_none(rows.reset_index(drop=True)).equals(_gaps_as_none(data.frame))


def _gaps_as_none(frame):
    return frame.astype(object).where(frame.notna(), None)


def test_a_table_wider_than_the_backend_holds_is_refused_before_any_write(app_db_uri, tmp_path):
    import pandas as pd

    engine = engine_for(app_db_uri)
    width = 2100
    frame = pd.DataFrame({f"f{i}": [0.5, 1.5] * 6 for i in range(width)} | {"y": [0, 1] * 6})
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(TooManyColumns, match=r"dataset 'wide' has 2101 columns; app-db on \w+ holds at most"):
        store_dataset(engine, read_request(SourceRequest(str(path), "y")))
    assert _versions(engine) == [] and _dataset_tables(engine) == []


def test_both_postgresql_drivers_load(postgres_admin, tmp_path, caplog):
    from postgres import fresh_database

    csv = _csv(tmp_path)
    with fresh_database(postgres_admin) as url:
        old_stack = url.replace("postgresql://", "postgresql+psycopg2://", 1)
        with caplog.at_level(logging.WARNING, logger="mlplatform.appdb.engine"):
            engine = engine_for(old_stack)
        assert engine.url.drivername == "postgresql+psycopg"
        assert "uses the psycopg2 driver; using psycopg (3) instead" in caplog.text
        stored = store_dataset(engine, read_source(csv, "churned", "customers"))
        assert stored.rows == 400
        modern = engine_for(url.replace("postgresql://", "postgresql+psycopg://", 1))
        assert latest_version(modern, "customers").version == 1
        with modern.connect() as conn:
            assert conn.execute(select(func.count()).select_from(dataset_versions)).scalar() == 1
        engine.dispose()
        modern.dispose()
