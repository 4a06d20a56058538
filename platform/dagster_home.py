"""Dagster's instance configuration for the platform's home: SQLite by default, PostgreSQL when asked for.

With ``DAGSTER_POSTGRES_URL`` set, ``$DAGSTER_HOME/dagster.yaml`` points run, event-log and schedule storage at
that PostgreSQL (dagster-postgres), so ``dagster dev``, the daemon and ``mlplatform demo`` all record there.
A ``dagster.yaml`` the platform did not write is never touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MARKER = "# Written by mlplatform"
POSTGRES_INSTANCE = f"""{MARKER} because DAGSTER_POSTGRES_URL is set; deleted again when it is unset.
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
"""


def ensure_instance_config(dagster_home: Path) -> None:
    config = dagster_home / "dagster.yaml"
    ours = config.exists() and config.read_text().startswith(MARKER)
    url = os.environ.get("DAGSTER_POSTGRES_URL")
    if url:
        # dagster-postgres sends psycopg2-style parameters (NOTIFY ... %(id)s), which psycopg 3 rejects, and
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3: name the driver.
        os.environ["DAGSTER_POSTGRES_URL"] = re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)
        if not config.exists() or ours:
            config.write_text(POSTGRES_INSTANCE)
    elif ours:
        config.unlink()
