"""Moving an alias: in the MLflow registry, and in app-db's alias history, always together."""

from __future__ import annotations

from sqlalchemy import Engine

from mlplatform.appdb.alias_history import record_change
from mlplatform.model_registry import ModelRegistry


def move_alias(
    registry: ModelRegistry, engine: Engine, model: str, alias: str, version: int | None, actor: str, reason: str
) -> int | None:
    """Point ``alias`` at ``version`` (None removes it); returns the version it held before."""
    current = registry.alias_version(model, alias)
    before = int(current.version) if current else None
    if version is None:
        if current is not None:
            registry.delete_alias(model, alias)
    else:
        registry.version(model, version)  # a clear error for a version that does not exist
        registry.set_alias(model, alias, version)
    if before != version:
        record_change(engine, model, alias, before, version, actor, reason)
    return before
