"""``mlplatform bench serve``: what serving costs under concurrent load, against a bare ``mlflow models serve``, and
what each additional model@alias costs in memory.

In a fresh embedded home, ``mlplatform demo --keep-serving`` trains iris and serves Production as the alias sensor's
runs do (rollout: the version loaded into the home's scoring process, behind the model@alias gateway). A bare
``mlflow models serve`` of the same version is started beside it as the baseline. Then C keep-alive clients post
one sample row to ``/invocations`` for S seconds each through the gateway, straight to the platform's scoring
server, and to the bare server, alternating every second, so all meet the same machine. Targets: no errors,
gateway p50 within ``TARGET_P50_OVERHEAD_MS`` of bare, and at least ``TARGET_RPS_RATIO`` of bare's requests/s.
``gateway_cpu_ms_per_request`` is the gateway process's own CPU time per request it forwarded (what it takes from a
shared machine), ``client_cpu_share`` what the clients used of one core.

Memory: the resident memory of the serving processes (scoring process and gateways) with Production alone, then
with ``EXTRA_MODELS`` more models served at Production beside it (each its own registered model and version, so they
share production's scoring process); ``rss_mb_per_model`` is the growth per additional model@alias (target
``TARGET_RSS_MB_PER_MODEL``), ``bare_rss_mb`` what one ``mlflow models serve`` holds.

Shadow: last, in the same home, what mirroring a share of production's requests to a challenger costs production
(``mlplatform.bench.serve_shadow``), reported under ``shadow`` with ``rss_mb_challenger``, what serving the
challenger added; ``targets_met`` covers it too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplatform.bench.home import cli, fresh_home, sample_body
from mlplatform.bench.http_load import alternate
from mlplatform.bench.serve_shadow import shadow_cost
from mlplatform.contract import load_sample_input
from mlplatform.resources.build import build_resources
from mlplatform.serving.processes import base_environment, free_port, handle_of, running, spawn, stop
from mlplatform.serving.reconcile import serve
from mlplatform.serving.scoring_client import log_tail, wait_ready

MODEL = "mlplatform_iris"
TARGET_P50_OVERHEAD_MS, TARGET_RPS_RATIO, TARGET_RSS_MB_PER_MODEL = 2.0, 0.9, 150.0
EXTRA_MODELS = 2


@contextmanager
def bare_mlflow_serve(tracking_uri: str, model: str, version: int, log: Path) -> Iterator[tuple[str, str]]:
    """MLflow's own ``mlflow models serve`` of ``model`` ``version``, the baseline: (address, handle) while it runs.
    It deserializes the version as MLflow does (pickle allowed for the whole server); benchmarks only."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model}/{version}"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    environment = {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    process = spawn(command, log, {**base_environment(), **environment, "UVICORN_ACCESS_LOG": "false"})
    handle, address = handle_of(process), f"http://127.0.0.1:{port}"
    try:
        wait_ready(address, lambda: running(handle), lambda: log_tail(log), f"bare mlflow models serve of {model}")
        yield address, handle
    finally:
        stop(handle)


def bench_serve(seconds: float, concurrency: int, shadow_concurrency: int, share: float) -> dict:
    with fresh_home("serve") as (settings, env, folder):
        try:
            cli(env, "demo", "--json", "--keep-serving")
            resources = build_resources(settings, environ={})
            backend, registry = resources["serving"].open(), resources["mlflow"].registry()
            record = next(r for r in backend.state.read().values() if r.model == MODEL)
            if record.upstream is None:
                raise RuntimeError(f"{record.name} has no scoring server after the demo")
            version, gateway_pid = record.upstream.version, _pid(record.gateway)
            memory = _memory_per_model(backend, registry, settings.production_alias)
            body = sample_body(settings, MODEL, version)
            with bare_mlflow_serve(settings.mlflow_tracking_uri, MODEL, version, folder / "bare.log") as (
                bare_address,
                handle,
            ):
                memory["bare_rss_mb"] = round(_rss_mb([_pid(handle)], group=True), 1)
                cpu, gateway_cpu, wall = time.process_time(), _cpu_seconds(gateway_pid), time.perf_counter()
                addresses = {"gateway": record.address, "scoring": record.upstream.address, "bare": bare_address}
                tallies = alternate(addresses, body, concurrency, seconds)
                client_cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
                gateway_cpu = _cpu_seconds(gateway_pid) - gateway_cpu
            before = _serving_rss_mb(backend.state.read().values())
            shadow = shadow_cost(
                backend,
                resources["app_db"].engine,
                registry,
                record,
                settings.production_alias,
                body,
                seconds,
                shadow_concurrency,
                share,
                lambda: _cpu_seconds(gateway_pid),
            )
            shadow["rss_mb_challenger"] = round(_serving_rss_mb(backend.state.read().values()) - before, 1)
        finally:
            cli(env, "serve", "down")
    gateway, scoring, bare = (tallies[name].figures() for name in ("gateway", "scoring", "bare"))
    answered = gateway["p50_ms"] is not None and bare["p50_ms"] is not None
    overhead = round(gateway["p50_ms"] - bare["p50_ms"], 3) if answered else None
    ratio = round(gateway["requests_per_s"] / bare["requests_per_s"], 3) if answered else None
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "model": MODEL,
        "version": version,
        **gateway,
        **{f"scoring_{key}": value for key, value in scoring.items()},
        **{f"bare_{key}": value for key, value in bare.items()},
        "gateway_p50_overhead_ms": overhead,
        "rps_ratio": ratio,
        **memory,
        "targets_met": gateway["errors"] == scoring["errors"] == bare["errors"] == 0
        and overhead is not None
        and overhead <= TARGET_P50_OVERHEAD_MS
        and ratio is not None
        and ratio >= TARGET_RPS_RATIO
        and memory["rss_mb_per_model"] <= TARGET_RSS_MB_PER_MODEL
        and shadow["target_met"],
        "gateway_cpu_ms_per_request": round(gateway_cpu * 1000 / max(1, gateway["requests"]), 3),
        "client_cpu_share": round(client_cpu_share, 3),
        "first_errors": {name: tally.first_error for name, tally in tallies.items() if tally.first_error},
        "shadow": shadow,
    }


def _memory_per_model(backend, registry, production_alias: str) -> dict:
    """Serving processes' RSS with Production alone, then with ``EXTRA_MODELS`` more models served at the production
    alias, each its own registered model (registered from Production's files), beside it."""
    alone = _serving_rss_mb(backend.state.read().values())
    production = registry.require_alias(MODEL, production_alias)
    sample = load_sample_input(registry, production.run_id)
    for number in range(EXTRA_MODELS):
        name = f"{MODEL}_bench_{number}"
        extra = registry.register(production.source, production.run_id, name, dict(production.tags))
        serve(backend, name, production_alias, int(extra.version), f"models:/{name}/{extra.version}", sample)
    records = backend.state.read().values()
    return {
        "models_served": len(records),
        "rss_mb_first_model": round(alone, 1),
        "rss_mb_per_model": round((_serving_rss_mb(records) - alone) / EXTRA_MODELS, 1),
    }


def _serving_rss_mb(records) -> float:
    """Resident memory of the gateways of ``records`` and of the scoring processes behind them."""
    pids = {_pid(r.gateway) for r in records} | {_pid(r.upstream.handle) for r in records if r.upstream}
    return _rss_mb(pids)


def _rss_mb(pids, group: bool = False) -> float:
    """Resident memory of ``pids`` (and, with ``group``, of every process in their process groups), in MB."""
    if group:
        pids = {int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat") if _group(p) in set(pids)}
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def _group(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(") ", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _pid(handle: str) -> int:
    return int(handle.split(":")[0])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
