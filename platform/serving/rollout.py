"""Rolling one model@alias out to the version the registry names, with history and automatic rollback.

Used by the serving job (Dagster) and by ``mlplatform serve up`` (scripts), so both behave the same.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from sqlalchemy import Engine

from mlplatform.aliases import move_alias
from mlplatform.appdb.alias_history import latest_change, previous_version, record_change
from mlplatform.contract import load_sample_input
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.serving.backend import ServingBackend
from mlplatform.serving.local_process import ServerError
from mlplatform.serving.reconcile import Outcome, serve, stop


class RolloutFailed(RuntimeError):
    """The version did not become healthy; the old one keeps serving. The message says what happened."""


def note_seen(engine: Engine, model: str, alias: str, seen_from: int | None, version: int | None) -> None:
    """Record a change made outside the platform (MLflow UI, API) unless the history already has it."""
    latest = latest_change(engine, model, alias)
    if (latest["to_version"] if latest else None) != version:
        record_change(engine, model, alias, seen_from, version, "mlflow registry", "alias changed outside the platform")


def roll_out(
    tracking: MlflowTracking, engine: Engine, backend: ServingBackend, model: str, alias: str,
    version: int | None, seen_from: int | None, actor: str,
) -> Outcome:
    note_seen(engine, model, alias, seen_from, version)
    if version is None:
        return stop(backend, model, alias)
    try:
        sample = load_sample_input(tracking.client().get_model_version(model, str(version)).run_id)
        return serve(backend, model, alias, version, f"models:/{model}/{version}", sample)
    except (ServerError, MlflowException, OSError) as exc:
        message = f"{model} v{version} never became healthy as {alias}; the previous server keeps serving"
        if alias == tracking.production_alias:
            previous = previous_version(engine, model, alias, version)
            if previous is not None:
                move_alias(tracking, engine, model, alias, previous, actor, f"automatic rollback: {message}")
                message += f"; {alias} rolled back to v{previous}"
        raise RolloutFailed(f"{message}:\n{exc}") from None
