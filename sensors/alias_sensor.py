"""alias_sensor: watches MLflow aliases and decides which model@alias servers need a serving run.

It only decides. Its cursor is the ``{model: {alias: version}}`` map it last handed off and a change counter; every
change becomes a RunRequest keyed by that change, and an expected server that is gone or unhealthy gets a repair
request keyed by what was observed (the server's recorded processes) and the backoff window, so two daemons looking
at the same state ask for the same run and a failing repair is retried once per window, not once per tick. Runs for
one server never overlap: the run queue limits the ``mlplatform/server`` tag to one run per value (dagster.yaml).
No repair is asked for a server while a serving run for it is queued or in progress: it would queue behind that
run and, behind a switch, serve the version the alias held before.
A change the process that moved the alias has already followed (``move_and_serve``: the platform's own moves switch
the server at once) needs no run; one that process is still rolling out is decided on a later tick.
MLflow being unreachable is a skipped tick (the cursor stays), never a crash.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mlplatform.logs import log_event
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.sensors.serving_job import serving_job
from mlplatform.sensors.ticks import minimum_interval
from mlplatform.serving.backend import ServingBackend
from mlplatform.serving.desired import changes, desired_servers
from mlplatform.serving.naming import server_name
from mlplatform.serving.reconcile import health
from mlplatform.serving.state import ServerRecord

SERVER_TAG = "mlplatform/server"
MODEL_TAG, ALIAS_TAG = "mlplatform/model", "mlplatform/alias"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
REPAIR_BACKOFF_S = 60


def alias_sensor(poll_seconds: int):
    @sensor(
        name="alias_sensor",
        job=serving_job,
        minimum_interval_seconds=minimum_interval(poll_seconds),
        default_status=DefaultSensorStatus.RUNNING,
        description="Serves every model@alias in MLFLOW_SERVE_ALIASES: starts, switches, stops and repairs servers.",
    )
    def _alias_sensor(context: SensorEvaluationContext, mlflow: MlflowTracking, serving: ServingResource):
        try:
            desired = desired_servers(mlflow.registry(), serving.serve_aliases, serving.model_patterns)
        except Exception as exc:  # noqa: BLE001 - any failure to read the registry skips the tick, nothing is lost
            log_event(context.log, "sensor_registry_unreadable", level="warning", error=type(exc).__name__)
            return SkipReason(f"MLflow registry not readable ({type(exc).__name__}), will retry on the next tick")
        cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {"seq": 0, "served": {}}
        seq, requests = cursor["seq"], []
        backend = serving.open()
        changed, handed = changes(cursor["served"], desired), {model: dict(held) for model, held in desired.items()}
        for model, alias, old, new in changed:
            follow = _followed(backend, model, alias, new)
            log_event(context.log, "sensor_alias_changed", model=model, alias=alias, version=new, from_version=old,
                      followed=follow or "serving run requested")  # fmt: skip
            if follow == "rolling out":  # decided on a later tick, once the process switching it has finished
                _hand(handed, model, alias, old)
            elif follow is None:
                seq += 1
                requests.append(
                    _request(model, alias, new, old, f"{model}@{alias}:v{new or 'none'}#{seq}", "alias changed")
                )
        moved = {(model, alias) for model, alias, _, _ in changed}
        busy = servers_in_flight(context.instance)
        repaired = repairs(backend, desired, moved | busy, int(time.time() // REPAIR_BACKOFF_S))
        for request in repaired:
            log_event(
                context.log,
                "sensor_repair_requested",
                server=request.tags[SERVER_TAG],
                version=request.tags["mlplatform/version"],
                reason=request.run_config["ops"]["reconcile_server"]["config"]["reason"],
            )
        return SensorResult(run_requests=requests + repaired, cursor=json.dumps({"seq": seq, "served": handed}))

    return _alias_sensor


def servers_in_flight(instance: DagsterInstance) -> set[tuple[str, str]]:
    """The model@alias pairs with a serving run queued or in progress. Their repair waits until that run ends: one
    requested meanwhile would queue behind it and could serve, after a switch, the version the alias held before."""
    runs = instance.get_runs(filters=RunsFilter(job_name=serving_job.name, statuses=IN_FLIGHT))
    return {(r.tags[MODEL_TAG], r.tags[ALIAS_TAG]) for r in runs if MODEL_TAG in r.tags and ALIAS_TAG in r.tags}


def _followed(backend: ServingBackend, model: str, alias: str, version: int | None) -> str | None:
    """Whether an alias change needs no serving run: the process that moved it (``move_and_serve``) is switching
    the server right now ("rolling out") or already has ("already served"); None: it needs one."""
    name = server_name(model, alias)
    if backend.state.rollout_in_progress(name):
        return "rolling out"
    record = backend.state.read().get(name)
    if version is None:
        return "already stopped" if record is None else None
    if record and record.upstream and record.upstream.version == version and health(backend, [record]).get(name):
        return "already served"
    return None


def _hand(handed: dict, model: str, alias: str, version: int | None) -> None:
    """Keep ``version`` as the one handed off for model@alias in the cursor (None: none)."""
    if version is None:
        handed.get(model, {}).pop(alias, None)
        if model in handed and not handed[model]:
            del handed[model]
    else:
        handed.setdefault(model, {})[alias] = version


def repairs(backend: ServingBackend, desired: dict, skipped: set, window: int) -> list[RunRequest]:
    """A repair request for every served model@alias whose server is missing, unhealthy or on another version,
    except the ``skipped`` ones (moved in this tick, or with a serving run in flight)."""
    records = backend.state.read()
    wanted = [
        (model, alias, version)
        for model, held in desired.items()
        for alias, version in held.items()
        if (model, alias) not in skipped
    ]
    probed = health(backend, [r for m, a, _ in wanted if (r := records.get(server_name(m, a))) is not None])
    requests = []
    for model, alias, version in wanted:
        name = server_name(model, alias)
        record = records.get(name)
        if record and record.upstream and record.upstream.version == version and probed.get(name):
            continue
        reason = "server missing" if record is None else "server unhealthy or on another version"
        requests.append(
            _request(model, alias, version, version, f"repair:{name}:v{version}:{_observed(record)}@{window}", reason)
        )
    return requests


def _observed(record: ServerRecord | None) -> str:
    """What was seen of the server: its gateway and upstream handles (pids or containers), or that it is missing."""
    if record is None:
        return "missing"
    return f"{record.gateway}/{record.upstream.handle if record.upstream else 'none'}"


def _request(
    model: str, alias: str, version: int | None, seen_from: int | None, run_key: str, reason: str
) -> RunRequest:
    config = {"model": model, "alias": alias, "version": version or 0, "seen_from": seen_from or 0, "reason": reason}
    return RunRequest(
        run_key=run_key,
        run_config={"ops": {"reconcile_server": {"config": config}}},
        tags={
            SERVER_TAG: server_name(model, alias),
            MODEL_TAG: model,
            ALIAS_TAG: alias,
            "mlplatform/version": str(version or "none"),
        },
    )
