"""Rolling one model@alias out to the version the registry names, with history and automatic rollback.

Used by the serving job (Dagster), ``mlplatform serve up`` (scripts), the demo and the platform's own alias moves
(``move_and_serve``), so all behave the same.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from sqlalchemy import Engine

from mlplatform.aliases import move_alias
from mlplatform.appdb.alias_history import latest_change, previous_version, record_change
from mlplatform.contract import load_sample_input
from mlplatform.logs import log_event, platform_logger
from mlplatform.model_registry import ModelRegistry
from mlplatform.resources.serving import ServingResource
from mlplatform.serving.backend import ServingBackend
from mlplatform.serving.desired import changes, desired_servers, is_served
from mlplatform.serving.naming import server_name
from mlplatform.serving.reconcile import Outcome, serve, stop
from mlplatform.serving.scoring_client import ServerError

LOG = platform_logger("serving")


class RolloutFailed(RuntimeError):
    """The version did not become healthy; the old one keeps serving. The message says what happened."""


def note_seen(engine: Engine, model: str, alias: str, seen_from: int | None, version: int | None) -> None:
    """Record a change made outside the platform (MLflow UI, API) unless the history already has it."""
    latest = latest_change(engine, model, alias)
    if (latest["to_version"] if latest else None) != version:
        record_change(engine, model, alias, seen_from, version, "mlflow registry", "alias changed outside the platform")


def roll_out(
    registry: ModelRegistry,
    engine: Engine,
    backend: ServingBackend,
    model: str,
    alias: str,
    version: int | None,
    seen_from: int | None,
    actor: str,
) -> Outcome:
    note_seen(engine, model, alias, seen_from, version)
    if version is None:
        return stop(backend, model, alias)
    try:
        # The scoring server checks the version's files before it loads them (``model_loader``): an untrusted
        # version is refused there, with the reason, like any version that never becomes healthy.
        sample = load_sample_input(registry, registry.version(model, version).run_id)
        return serve(backend, model, alias, version, f"models:/{model}/{version}", sample)
    except (ServerError, MlflowException, OSError) as exc:
        message = f"{model} v{version} never became healthy as {alias}; the previous server keeps serving"
        if alias == registry.aliases.production:
            previous = previous_version(engine, model, alias, version)
            if previous is not None:
                move_alias(registry, engine, model, alias, previous, actor, f"automatic rollback: {message}")
                log_event(LOG, "serving_rolled_back", level="warning", model=model, alias=alias, version=previous)
                message += f"; {alias} rolled back to v{previous}"
        raise RolloutFailed(f"{message}:\n{exc}") from None


def move_and_serve(
    registry: ModelRegistry,
    engine: Engine,
    serving: ServingResource,
    model: str,
    alias: str,
    version: int | None,
    actor: str,
    reason: str,
) -> tuple[int | None, Outcome | None]:
    """Move the alias (``move_alias``) and, when this home already serves that model@alias and this process may run
    its servers (``ServingResource.backend_for_moves``), switch or stop the server at once, in this process: the
    switch waits for neither the alias sensor's poll nor a serving run's start. The sensor then finds it served and
    asks for nothing. Anywhere else (a first server, the Docker backend) the sensor's serving run follows the move as
    it follows any other. Returns the version the alias held before and the roll-out's outcome (None: left to the
    sensor); a roll-out that fails raises ``RolloutFailed`` after its automatic rollback, as a serving run would."""
    backend = serving.backend_for_moves()
    if backend is None or not is_served(model, alias, serving.serve_aliases, serving.model_patterns):
        return move_alias(registry, engine, model, alias, version, actor, reason), None
    name = server_name(model, alias)
    with backend.state.rolling_out(name):  # from the move on: the sensor defers the change instead of asking a run
        before = move_alias(registry, engine, model, alias, version, actor, reason)
        if before == version or name not in backend.state.read():
            return before, None
        return before, roll_out(registry, engine, backend, model, alias, version, before, actor)


def reconcile_all(
    registry: ModelRegistry,
    engine: Engine,
    backend: ServingBackend,
    aliases: tuple[str, ...],
    models: tuple[str, ...],
    actor: str,
) -> list[tuple[str, str, Outcome | RolloutFailed]]:
    """Once, without Dagster: every model@alias the registry wants is served at its version (started, switched or
    repaired), and every server whose alias is gone is stopped. One result per model@alias, in a stable order."""
    desired = desired_servers(registry, aliases, models)
    served: dict[str, dict[str, int | None]] = {}
    for record in backend.state.read().values():
        served.setdefault(record.model, {})[record.alias] = record.upstream.version if record.upstream else None
    targets: dict[tuple[str, str], int | None] = {
        (model, alias): version for model, held in desired.items() for alias, version in held.items()
    }
    targets.update({(model, alias): None for model, alias, _, new in changes(served, desired) if new is None})
    results: list[tuple[str, str, Outcome | RolloutFailed]] = []
    for (model, alias), version in sorted(targets.items()):
        try:
            results.append((model, alias, roll_out(registry, engine, backend, model, alias, version, None, actor)))
        except RolloutFailed as exc:
            results.append((model, alias, exc))
    return results
