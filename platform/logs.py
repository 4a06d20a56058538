"""The platform's own log lines as JSON, one object per line, with stable fields Loki can filter on:

``{"ts": ..., "level": ..., "event": ..., "dataset": ..., "model": ..., "alias": ..., "version": ..., "run_id": ...}``
plus whatever else the call adds. The six stable fields are always present (``null`` when they do not apply), so a
query such as ``{service="mlflow-serve"} | json | event="access" | model="mlplatform_iris"`` works on every line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

STABLE_FIELDS = ("event", "dataset", "model", "alias", "version", "run_id")
PLATFORM_LOGGER = "mlplatform"


def event_line(event: str, level: str = "info", **fields: Any) -> str:
    """One JSON log line: the stable fields first, then the others; values JSON cannot hold become strings."""
    stable = {name: fields.pop(name, None) for name in STABLE_FIELDS[1:]}
    record = {"ts": round(time.time(), 3), "level": level, "event": event, **stable, **fields}
    return json.dumps(record, default=str, separators=(",", ":"))


def log_event(logger: Any, event: str, level: str = "info", **fields: Any) -> None:
    """Log ``event_line(...)`` through ``logger`` (a ``logging.Logger`` or Dagster's ``context.log``)."""
    getattr(logger, level)(event_line(event, level, **fields))


def platform_logger(name: str) -> logging.Logger:
    """``mlplatform.<name>``: its lines reach the handler ``configure`` installs."""
    return logging.getLogger(f"{PLATFORM_LOGGER}.{name}")


def configure(stream=None, level: int = logging.INFO) -> None:
    """Send the ``mlplatform`` loggers' lines, as they are (they are JSON already), to ``stream`` (stderr)."""
    root = logging.getLogger(PLATFORM_LOGGER)
    if any(getattr(handler, "_mlplatform", False) for handler in root.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._mlplatform = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
