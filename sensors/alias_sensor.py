"""alias_sensor: watches MLflow aliases and decides which model@alias servers need a serving run.

It only decides: its cursor is the ``{model: {alias: version}}`` map it last handed off, every change becomes a
RunRequest with a unique run_key, and an expected server that is gone or unhealthy gets a repair request. MLflow
being unreachable is a skipped tick (the cursor stays), never a crash.
"""

import json
import os
import time

from dagster import DefaultSensorStatus, RunRequest, RunsFilter, SensorEvaluationContext, SensorResult, SkipReason, sensor
from dagster import DagsterRunStatus
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.sensors.serving_job import serving_job
from mlplatform.serving.desired import changes, desired_servers
from mlplatform.serving.naming import server_name
from mlplatform.serving.reconcile import healthy

SERVER_TAG = "mlplatform/server"
REPAIR_BACKOFF_S = 60


def _request(model: str, alias: str, version: int | None, seen_from: int | None, run_key: str, reason: str) -> RunRequest:
    config = {"model": model, "alias": alias, "version": version or 0, "seen_from": seen_from or 0, "reason": reason}
    return RunRequest(
        run_key=run_key,
        run_config={"ops": {"reconcile_server": {"config": config}}},
        tags={SERVER_TAG: server_name(model, alias), "mlplatform/version": str(version or "none")},
    )


@sensor(
    job=serving_job,
    minimum_interval_seconds=int(os.environ.get("MLFLOW_SERVE_POLL_SECONDS", "5")),
    default_status=DefaultSensorStatus.RUNNING,
    description="Serves every model@alias in MLFLOW_SERVE_ALIASES: starts, switches, stops and repairs servers.",
)
def alias_sensor(context: SensorEvaluationContext, mlflow: MlflowTracking, serving: ServingResource):
    try:
        desired = desired_servers(mlflow.client(), serving.serve_aliases)
    except Exception as exc:  # noqa: BLE001 - any failure to read the registry skips the tick, nothing is lost
        return SkipReason(f"MLflow registry at {mlflow.tracking_uri} not readable, will retry: {exc}")
    cursor = json.loads(context.cursor) if context.cursor else {"seq": 0, "served": {}}
    seq, requests = cursor["seq"], []
    changed = changes(cursor["served"], desired)
    for model, alias, old, new in changed:
        seq += 1
        requests.append(_request(model, alias, new, old, f"{model}@{alias}:v{new or 'none'}#{seq}", "alias changed"))
    requests += _repairs(context, serving, desired, {(model, alias) for model, alias, _, _ in changed})
    return SensorResult(run_requests=requests, cursor=json.dumps({"seq": seq, "served": desired}))


def _recently_handled(context: SensorEvaluationContext, name: str) -> bool:
    """A serving run for this server is under way, or failed less than REPAIR_BACKOFF_S ago (no retry storm)."""
    [latest] = context.instance.get_run_records(
        filters=RunsFilter(job_name=serving_job.name, tags={SERVER_TAG: name}), limit=1
    ) or [None]
    if latest is None:
        return False
    if latest.dagster_run.status in IN_PROGRESS_RUN_STATUSES:
        return True
    ended = latest.end_time or 0
    return latest.dagster_run.status == DagsterRunStatus.FAILURE and time.time() - ended < REPAIR_BACKOFF_S


def _repairs(context: SensorEvaluationContext, serving: ServingResource, desired: dict, changed: set) -> list[RunRequest]:
    backend = serving.open()
    records = backend.state.read()
    repairs = []
    for model, held in desired.items():
        for alias, version in held.items():
            name = server_name(model, alias)
            record = records.get(name)
            if (model, alias) in changed or (record and record.upstream and record.upstream.version == version and healthy(backend, record)):
                continue
            if not _recently_handled(context, name):
                reason = "server missing" if record is None else "server unhealthy or on another version"
                repairs.append(_request(model, alias, version, version, f"repair:{name}:v{version}:{time.time_ns()}", reason))
    return repairs
