"""Shared fixtures: an isolated embedded platform home per test, and a runner for the platform's real jobs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlplatform.settings import Settings, platform_variables

PLATFORM_VARIABLES = (*platform_variables(), "MLFLOW_POSTGRES_URI")
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_environment():
    """This process's environment without the platform's variables (restored afterwards), for tests whose code or
    children read the environment."""
    saved = dict(os.environ)
    for name in PLATFORM_VARIABLES:
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def migrated_mlflow_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store with its schema migrated (about 3 s), made once and copied into each home."""
    from mlplatform.tracking_store import migrated_template

    return migrated_template(tmp_path_factory.mktemp("mlflow-template"))


def embedded_settings(home: Path, store: Path, **variables: str) -> Settings:
    """Settings of an embedded home at ``home`` (plus ``variables``), its MLflow store copied from ``store``; dataset
    files may be read from the folder around the home (where tests write them)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store, home / "mlflow.db")
    return Settings.from_mapping({"MLPLATFORM_HOME": str(home), "MLPLATFORM_DATA_DIRS": str(home.parent), **variables})


@pytest.fixture
def platform_home(tmp_path, migrated_mlflow_store) -> Settings:
    """An embedded platform (SQLite app-db, MLflow SQLite store, Dagster SQLite storage) in a fresh folder."""
    return embedded_settings(tmp_path / "home", migrated_mlflow_store)


class Lifecycle:
    """Runs the platform's jobs for real (Dagster runs recorded in the home's instance)."""

    def __init__(self, settings: Settings) -> None:
        from mlplatform import dagster_home
        from mlplatform.definitions import build_definitions

        self.settings = settings
        self.defs = build_definitions(settings, environ={})
        self.instance = dagster_home.instance(settings)

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
        return self.defs.resources["app_db"].engine

    def registry(self):
        return self.defs.resources["mlflow"].registry()

    def serving(self):
        return self.defs.resources["serving"].open()


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
def pg_lifecycle(postgres_admin, tmp_path, migrated_mlflow_store):
    """The embedded platform, but with app-db in a fresh PostgreSQL database."""
    from postgres import fresh_database

    with fresh_database(postgres_admin) as url:
        runner = Lifecycle(embedded_settings(tmp_path / "home", migrated_mlflow_store, APP_DB_URI=url))
        yield runner
        runner.instance.dispose()
        runner.engine.dispose()


@pytest.fixture(scope="session")
def mlflow_stack(postgres_admin, tmp_path_factory):
    """SeaweedFS behind `mlplatform tracking-server` on PostgreSQL, for tests that stop and start them."""
    from mlflow_stack import running_stack

    with running_stack(postgres_admin, tmp_path_factory.mktemp("mlflow-stack")) as stack:
        yield stack
