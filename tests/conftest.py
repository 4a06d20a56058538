"""Shared fixtures: an isolated embedded platform home per test, and a runner for the platform's real jobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagster import DagsterInstance

from mlplatform.settings import apply_embedded_defaults, platform_variables

PLATFORM_VARIABLES = (*platform_variables(), "MLFLOW_POSTGRES_URI")
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_environment():
    saved = dict(os.environ)
    for name in PLATFORM_VARIABLES:
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def platform_home(tmp_path, clean_environment):
    """An embedded platform (SQLite app-db, MLflow SQLite store, Dagster SQLite storage) in a fresh folder."""
    return apply_embedded_defaults(tmp_path / "home")


class Lifecycle:
    """Runs the platform's jobs for real (Dagster runs recorded in the home's instance)."""

    def __init__(self, settings) -> None:
        from mlplatform.definitions import defs

        self.settings = settings
        self.defs = defs
        self.instance = DagsterInstance.get()

    def run(self, job: str, dataset: str, run_config: dict | None = None):
        from mlplatform.runner import run_job

        return run_job(self.defs, self.instance, job, dataset, run_config)

    def load(self, dataset: str, source: str = "", target: str = ""):
        config = {"ops": {"raw_dataset": {"config": {"source": source, "target": target}}}}
        return self.run("data_load_job", dataset, config)

    def metadata(self, result, asset: str) -> dict:
        from mlplatform.runner import materialization_metadata

        return materialization_metadata(result, asset)

    @property
    def engine(self):
        from mlplatform.appdb.engine import engine_for

        return engine_for(self.settings.app_db_uri)

    def tracking(self):
        from mlplatform.resources.mlflow_tracking import MlflowTracking

        return MlflowTracking.from_settings(self.settings)


@pytest.fixture
def lifecycle(platform_home):
    runner = Lifecycle(platform_home)
    yield runner
    runner.instance.dispose()


@pytest.fixture(scope="session")
def postgres_admin():
    """Admin URL of a real PostgreSQL server (the machine's, or a throwaway cluster)."""
    from postgres import postgres_admin_url

    with postgres_admin_url() as url:
        yield url


@pytest.fixture
def pg_lifecycle(postgres_admin, clean_environment, tmp_path):
    """The embedded platform, but with app-db in a fresh PostgreSQL database."""
    from postgres import fresh_database

    with fresh_database(postgres_admin) as url:
        os.environ["APP_DB_URI"] = url
        runner = Lifecycle(apply_embedded_defaults(tmp_path / "home"))
        yield runner
        runner.instance.dispose()
        runner.engine.dispose()
