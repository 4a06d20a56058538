"""``mlplatform bench switch``: how long a Production switch takes under load, and what the gateway costs.

In a fresh embedded home: the demo twice (v1 Production, v2 challenger), then ``dagster dev`` with the alias sensor.
A client calls ``/invocations`` through the stable address without pause while Production moves between the two
versions several times; a switch lasts from the alias move until the first answer from the new version. Two kinds of
move, in turn: the platform's own (``move_and_serve``, as ``mlplatform alias set`` and the promotion gate move it),
which switch the server at once in the moving process, then moves made in the registry alone (as the MLflow UI
makes them), which the alias sensor follows with a serving run. Each switch is cut into phases from timestamps
that exist anyway: ``detect_s`` (alias move -> the sensor's serving run created, Dagster's run record),
``launch_s`` (created -> started), ``start_s`` (started -> the version loaded, the scoring server's log),
``health_s`` (loaded -> the route written, ``upstream.json``'s time) and ``cutover_s`` (route written -> the
client's first answer from the new version); a platform move has no detection and no run, so its ``detect_s`` and
``launch_s`` are 0 and its ``start_s`` runs from the move. Then, in the same run, sequential keep-alive requests
measure the gateway (metrics layer) against a bare ``mlflow models serve`` of the same version.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance, RunsFilter

from mlplatform import dagster_home
from mlplatform.bench.home import cli, fresh_home, sample_body
from mlplatform.bench.serve import bare_mlflow_serve
from mlplatform.dagster_process import start_dagster_dev, stop_dagster_dev
from mlplatform.resources.build import build_resources
from mlplatform.serving.naming import server_name
from mlplatform.serving.processes import free_port
from mlplatform.serving.rollout import move_and_serve
from mlplatform.settings import Settings

MODEL, SWITCH_TIMEOUT_S, OVERHEAD_REQUESTS = "mlplatform_iris", 180, 400
TARGET_P50_S, TARGET_MAX_S = 12.0, 20.0
ACTOR, REASON = "bench switch", "switch under load"
PHASES = ("detect_s", "launch_s", "start_s", "health_s", "cutover_s")


class Client(threading.Thread):
    """Calls /invocations in a loop over one keep-alive connection; remembers (time, version or error)."""

    def __init__(self, address: str, body: bytes) -> None:
        super().__init__(daemon=True)
        self.host, self.port = address.removeprefix("http://").split(":")
        self.body, self.stopping = body, threading.Event()
        self.answers: list[tuple[float, str]] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        while not self.stopping.is_set() and len(self.answers) < 2_000_000:
            try:
                connection.request("POST", "/invocations", self.body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                self.answers.append(
                    (
                        time.monotonic(),
                        response.getheader("X-Model-Version", "?")
                        if response.status == 200
                        else f"HTTP {response.status}",
                    )
                )
            except (OSError, http.client.HTTPException) as exc:
                self.answers.append((time.monotonic(), f"error {exc}"))
                connection.close()
                connection = http.client.HTTPConnection(self.host, int(self.port), timeout=30)


def _latency(address: str, body: bytes) -> dict:
    host, port = address.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    timings = []
    started = time.perf_counter()
    for _ in range(OVERHEAD_REQUESTS):
        begin = time.perf_counter()
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        connection.getresponse().read()
        timings.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(statistics.median(timings) * 1000, 3),
        "requests_per_s": round(OVERHEAD_REQUESTS / elapsed, 1),
    }


def bench_switch(switches: int, registry_switches: int) -> dict:
    with fresh_home("switch") as (settings, env, folder):
        cli(env, "demo", "--json")
        cli(env, "demo", "--json")  # v2 becomes the challenger; Production stays v1
        dagster = start_dagster_dev(free_port(), folder / "dagster-dev.log", env)
        try:
            return _measure(env, settings, switches, registry_switches, folder / "bare.log")
        finally:
            stop_dagster_dev(dagster)
            cli(env, "serve", "down")


def _served(env: dict, version: int) -> dict | None:
    status = json.loads(cli(env, "serve", "status", "--json"))
    return next((s for s in status if s["version"] == version and s["healthy"]), None)


def _wait_served(env: dict, version: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if served := _served(env, version):
            return served
        time.sleep(1)
    raise RuntimeError(f"Production v{version} was not served within {timeout_s:.0f} s")


def _measure(env: dict, settings: Settings, switches: int, registry_switches: int, log: Path) -> dict:
    server = _wait_served(env, 1, timeout_s=600)  # dagster dev starts, the sensor ticks, the first server loads
    resources = build_resources(settings, environ={})
    registry, engine = resources["mlflow"].registry(), resources["app_db"].engine
    body = sample_body(settings, MODEL, 1)
    client = Client(server["url"], body)
    client.start()
    instance = dagster_home.instance(settings)
    serving = settings.home / "serving"
    measured: dict[bool, list[tuple[float, dict]]] = {True: [], False: []}
    version = 1
    for by_platform in [True] * switches + [False] * registry_switches:
        version = 2 if version == 1 else 1
        moved, moved_at = time.monotonic(), time.time()
        if by_platform:
            move_and_serve(registry, engine, resources["serving"], MODEL, "Production", version, ACTOR, REASON)
        else:
            registry.set_alias(MODEL, "Production", version)  # as the MLflow UI moves it: the sensor follows
        deadline = moved + SWITCH_TIMEOUT_S
        while time.monotonic() < deadline and not any(
            t > moved and v == str(version) for t, v in client.answers[-200:]
        ):
            time.sleep(0.05)
        first = next((t for t, v in client.answers if t > moved and v == str(version)), None)
        if first is None:
            raise RuntimeError(f"Production v{version} never answered within {SWITCH_TIMEOUT_S} s")
        answered = moved_at + first - moved
        measured[by_platform].append(
            (first - moved, _phases(instance, serving, version, moved_at, answered, by_platform))
        )
        time.sleep(3)  # the old version drains and stops
    client.stopping.set()
    client.join()
    failed = [v for _, v in client.answers if v not in ("1", "2")]
    with bare_mlflow_serve(settings.mlflow_tracking_uri, MODEL, version, log) as (bare, _):
        overhead = {"gateway": _latency(server["url"], body), "bare_mlflow_serve": _latency(bare, body)}
    overhead["p50_overhead_ms"] = round(overhead["gateway"]["p50_ms"] - overhead["bare_mlflow_serve"]["p50_ms"], 3)
    platform, registry = _summary(measured[True]), _summary(measured[False])
    return {
        **platform,
        "targets": {"switch_seconds_p50": TARGET_P50_S, "switch_seconds_max": TARGET_MAX_S, "requests_failed": 0},
        # both kinds of move, each when measured, and no failed request
        "targets_met": bool(measured[True] or measured[False])
        and all(kind["targets_met"] for kind in (platform, registry) if kind["switches"])
        and not failed,
        "registry_moves": registry,
        "requests_total": len(client.answers),
        "requests_failed": len(failed),
        "failures": sorted(set(failed))[:5],
        "metrics_layer": overhead,
    }


def _summary(switches: list[tuple[float, dict]]) -> dict:
    """Durations and phases of one kind of move."""
    durations, phases = [d for d, _ in switches], [p for _, p in switches]
    p50 = round(statistics.median(durations), 2) if durations else None
    longest = round(max(durations), 2) if durations else None
    return {
        "switches": len(switches),
        "switch_seconds_p50": p50,
        "switch_seconds_max": longest,
        "targets_met": p50 is not None and longest is not None and p50 <= TARGET_P50_S and longest <= TARGET_MAX_S,
        "switch_seconds": [round(d, 2) for d in durations],
        "phases_p50": {k: _median([p[k] for p in phases]) for k in PHASES},
        "phases": phases,
    }


def _phases(
    instance: DagsterInstance, serving: Path, version: int, moved: float, answered: float, by_platform: bool
) -> dict:
    """The phases of one switch (wall-clock seconds); a phase whose timestamp was not found is None."""
    created: float | None
    started: float | None
    if by_platform:  # no detection, no run: the moving process switched the server itself
        created = started = moved
    else:
        runs = instance.get_run_records(
            RunsFilter(job_name="serving_job", created_after=datetime.fromtimestamp(moved, tz=UTC)),
            order_by="create_timestamp",
            ascending=True,
        )
        created = runs[0].create_timestamp.timestamp() if runs else None
        started = runs[0].start_time if runs else None
    loads = [
        event["ts"]
        for log in (serving / "scoring").glob("server-*.log")
        for event in map(_event, log.read_text(errors="replace").splitlines())
        if event.get("event") == "scoring_model_loaded" and event.get("version") == version and event["ts"] > moved
    ]
    loaded = min(loads, default=None)
    routed = (serving / server_name(MODEL, "Production") / "upstream.json").stat().st_mtime
    marks = (moved, created, started, loaded, routed, answered)
    return {
        phase: round(end - begin, 3) if begin is not None and end is not None else None
        for phase, begin, end in zip(PHASES, marks[:-1], marks[1:], strict=True)
    }


def _event(line: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _median(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return round(statistics.median(found), 3) if found else None
