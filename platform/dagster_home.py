"""Dagster's instance for the platform's home, prepared when a command runs (never at import).

``$DAGSTER_HOME/dagster.yaml`` is written by the platform: SQLite storage by default, PostgreSQL (dagster-postgres)
when ``DAGSTER_POSTGRES_URL`` is set, and in both cases a run queue that lets one serving run per model@alias run at
a time. The URL itself is never written: the file names the variable, and the platform's processes get it in their
environment. A ``dagster.yaml`` the platform did not write is never touched.
"""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from mlplatform.settings import Settings
from mlplatform.tracking_store import prepare_embedded_store

MARKER = "# Written by mlplatform"
RUN_QUEUE = """concurrency:
  runs:
    tag_concurrency_limits:
      - key: mlplatform/server  # one serving run per model@alias at a time (sensors/alias_sensor.py)
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1  # Dagster's default 5 s would wait that long before a switch's serving run starts
"""
POSTGRES_STORAGE = """storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
"""


def instance_yaml(settings: Settings) -> str:
    storage = POSTGRES_STORAGE if settings.dagster_postgres_url else ""
    header = f"{MARKER}; rewritten from the settings by every platform command.\n"
    return f"{header}{storage}{RUN_QUEUE}telemetry:\n  enabled: false\n"


def prepare(settings: Settings) -> Path:
    """Create the home (an embedded one with its migrated MLflow store) and Dagster's folder, and write the
    platform's ``dagster.yaml``; returns ``DAGSTER_HOME``."""
    settings.home.mkdir(parents=True, exist_ok=True)
    prepare_embedded_store(settings)
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text().startswith(MARKER):
        wanted = instance_yaml(settings)
        if not config.exists() or config.read_text() != wanted:
            temporary = config.with_suffix(".tmp")
            temporary.write_text(wanted)
            temporary.replace(config)
    return home


def instance(settings: Settings) -> DagsterInstance:
    """The Dagster instance of the settings' home, in this process (the URL is passed in, not read from the
    environment, so ``Settings.load(home)`` works whatever this process's environment says)."""
    home = prepare(settings)
    overrides = (
        {"storage": {"postgres": {"postgres_url": settings.dagster_postgres_url}}}
        if settings.dagster_postgres_url
        else None
    )
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))
