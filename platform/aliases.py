"""Moving an alias: in the MLflow registry, and in app-db's alias history, always together."""

from __future__ import annotations

from sqlalchemy import Engine

from mlplatform.appdb.alias_history import record_change
from mlplatform.resources.mlflow_tracking import MlflowTracking


def move_alias(
    tracking: MlflowTracking, engine: Engine, model: str, alias: str, version: int | None, actor: str, reason: str
) -> int | None:
    """Point ``alias`` at ``version`` (None removes it); returns the version it held before."""
    current = tracking.alias_version(model, alias)
    before = int(current.version) if current else None
    if version is None:
        if current is not None:
            tracking.client().delete_registered_model_alias(model, alias)
    else:
        tracking.client().get_model_version(model, str(version))  # a clear error for a version that does not exist
        tracking.set_alias(model, alias, version)
    if before != version:
        record_change(engine, model, alias, before, version, actor, reason)
    return before
