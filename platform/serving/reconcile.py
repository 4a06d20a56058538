"""Make the servers match the registry, one model@alias at a time, without downtime.

A new version starts beside the old one and must answer ``/ping`` and one ``/invocations`` call with the model's
``sample_input.csv`` before the gateway routes to it; the old version stops after in-flight requests drained.
"""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import pandas as pd

from mlplatform.logs import log_event, platform_logger
from mlplatform.serving.backend import ServingBackend
from mlplatform.serving.naming import server_name
from mlplatform.serving.scoring_client import ServerError, invoke, ping
from mlplatform.serving.state import ServerRecord, write_upstream

LOG = platform_logger("serving")
DRAIN_S = 2.0
SWITCH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Outcome:
    name: str
    action: str  # "unchanged", "started", "switched", "repaired", "stopped", "absent"
    version: int | None
    address: str | None


def gateway_version(address: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{address}/-/upstream", timeout=2) as response:
            return json.loads(response.read())["version"]
    except (OSError, ValueError, KeyError):
        return None


def healthy(backend: ServingBackend, record: ServerRecord) -> bool:
    """The gateway is up, routes to the recorded version, and that version answers /ping."""
    return (
        record.upstream is not None
        and backend.gateway_alive(record)
        and gateway_version(record.address) == str(record.upstream.version)
        and ping(record.address)
    )


def health(backend: ServingBackend, records: list[ServerRecord], timeout_s: float = 5.0) -> dict[str, bool]:
    """``healthy`` of every record, probed concurrently; a probe still running after ``timeout_s`` is unhealthy."""
    if not records:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(len(records), 16), thread_name_prefix="health")
    futures = {record.name: pool.submit(healthy, backend, record) for record in records}
    wait(futures.values(), timeout=timeout_s)
    pool.shutdown(wait=False, cancel_futures=True)
    return {name: future.done() and not future.exception() and future.result() for name, future in futures.items()}


def serve(
    backend: ServingBackend, model: str, alias: str, version: int, model_uri: str, sample: pd.DataFrame
) -> Outcome:
    name = server_name(model, alias)
    with backend.state.rolling_out(name):
        return _serve(backend, name, model, alias, version, model_uri, sample)


def _serve(
    backend: ServingBackend, name: str, model: str, alias: str, version: int, model_uri: str, sample: pd.DataFrame
) -> Outcome:
    current = backend.state.read().get(name)
    if current and current.upstream and current.upstream.version == version and healthy(backend, current):
        return Outcome(name, "unchanged", version, current.address)
    upstream = backend.start_upstream(name, model, alias, version, model_uri)
    try:
        backend.wait_upstream(upstream, f"{model} v{version} for {alias}")
        invoke(upstream.address, sample)
    except BaseException:  # whatever went wrong (a timeout, a refused connection, an interrupt): stop what started
        log_event(LOG, "serving_version_unhealthy", level="warning", model=model, alias=alias, version=version)
        backend.stop_upstream(upstream)
        raise
    with backend.state.locked() as records:
        record = records.get(name)
        if record is None or not backend.gateway_alive(record):
            address, handle = backend.start_gateway(name, model, alias, record.address if record else None)
            record = ServerRecord(name, model, alias, address, handle, upstream=None)
        previous = record.upstream
        write_upstream(backend.state.upstream_file(name), upstream, [str(c) for c in sample.columns])
        record.upstream = upstream
        records[name] = record
    _wait_for_switch(record, version)
    log_event(
        LOG,
        "serving_switched",
        model=model,
        alias=alias,
        version=version,
        from_version=previous.version if previous else None,
        address=record.address,
    )
    if previous is not None and previous.address != upstream.address:  # not the very version repaired in place
        time.sleep(DRAIN_S)  # requests already sent to the old version finish
        backend.stop_upstream(previous)
    action = (
        "started"
        if current is None
        else ("switched" if current.upstream and current.upstream.version != version else "repaired")
    )
    return Outcome(name, action, version, record.address)


def stop(backend: ServingBackend, model: str, alias: str) -> Outcome:
    name = server_name(model, alias)
    with backend.state.rolling_out(name):
        return _stop(backend, name, model, alias)


def _stop(backend: ServingBackend, name: str, model: str, alias: str) -> Outcome:
    with backend.state.locked() as records:
        record = records.pop(name, None)
    if record is None:
        return Outcome(name, "absent", None, None)
    log_event(
        LOG, "serving_stopped", model=model, alias=alias, version=record.upstream.version if record.upstream else None
    )
    backend.stop_gateway(record)
    if record.upstream is not None:
        backend.stop_upstream(record.upstream)
    return Outcome(name, "stopped", None, record.address)


def stop_all(backend: ServingBackend) -> list[Outcome]:
    return [stop(backend, r.model, r.alias) for r in backend.state.read().values()]


def _wait_for_switch(record: ServerRecord, version: int) -> None:
    deadline = time.monotonic() + SWITCH_TIMEOUT_S
    while time.monotonic() < deadline:
        if gateway_version(record.address) == str(version) and ping(record.address):
            return
        time.sleep(0.1)
    raise ServerError(
        f"gateway {record.address} of {record.name} did not switch to v{version} within {SWITCH_TIMEOUT_S:.0f} s"
    )
