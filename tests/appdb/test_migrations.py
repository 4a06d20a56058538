"""app-db migrations: versioned, applied once, safe when several processes start at the same time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, inspect, text

from mlplatform.appdb.migrations import MIGRATIONS, current_version, upgrade

from postgres import fresh_database

LATEST = MIGRATIONS[-1].version
TABLES = {"dataset_versions", "predictions", "monitoring_reports", "mlplatform_schema_version"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
        yield engine
        engine.dispose()
        return
    with fresh_database(request.getfixturevalue("postgres_admin")) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def test_upgrade_applies_each_migration_once(empty_engine):
    assert current_version(empty_engine) == 0
    assert upgrade(empty_engine) == LATEST
    assert upgrade(empty_engine) == LATEST
    assert TABLES <= set(inspect(empty_engine).get_table_names())
    with empty_engine.connect() as conn:
        versions = conn.execute(text("SELECT version FROM mlplatform_schema_version ORDER BY version")).scalars().all()
    assert versions == [m.version for m in MIGRATIONS]


def test_concurrent_starters_migrate_once(postgres_admin):
    with fresh_database(postgres_admin) as url:
        engines = [create_engine(url) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert set(pool.map(upgrade, engines)) == {LATEST}
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM mlplatform_schema_version")).scalar() == len(MIGRATIONS)
        for engine in engines:
            engine.dispose()
