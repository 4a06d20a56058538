"""Alias history in app-db: who or what moved which alias of which model, when, from which version to which."""

from __future__ import annotations

from sqlalchemy import Engine, select

from mlplatform.appdb.schema import alias_history


def record_change(
    engine: Engine, model: str, alias: str, from_version: int | None, to_version: int | None, actor: str, reason: str
) -> None:
    with engine.begin() as conn:
        conn.execute(
            alias_history.insert().values(
                model_name=model,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                reason=reason,
            )
        )


def history(engine: Engine, model: str, alias: str | None = None) -> list[dict]:
    """Changes, oldest first."""
    query = select(alias_history).where(alias_history.c.model_name == model).order_by(alias_history.c.id)
    if alias is not None:
        query = query.where(alias_history.c.alias == alias)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def latest_change(engine: Engine, model: str, alias: str) -> dict | None:
    changes = history(engine, model, alias)
    return changes[-1] if changes else None


def previous_version(engine: Engine, model: str, alias: str, current: int) -> int | None:
    """The version the alias held before ``current`` took it (skipping changes that led to ``current`` itself)."""
    for change in reversed(history(engine, model, alias)):
        if change["to_version"] == current and change["from_version"] not in (None, current):
            return change["from_version"]
    return None
