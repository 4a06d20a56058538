"""``mlplatform bench serve``: what the gateway costs under concurrent load, against a bare ``mlflow models serve``.

In a fresh embedded home, ``mlplatform demo --keep-serving`` trains iris and serves Production as the alias sensor's
runs do (rollout: a scoring server behind the model@alias gateway). Then C keep-alive clients post one sample row
to ``/invocations`` for S seconds through the gateway and S seconds straight to the scoring server behind it (the
bare ``mlflow models serve`` of the same version, the very same process), alternating every second, so both meet
the same machine. Targets: no errors, gateway p50 within ``TARGET_P50_OVERHEAD_MS`` of bare, and at least
``TARGET_RPS_RATIO`` of bare's requests/s. ``gateway_cpu_ms_per_request`` is the gateway process's own CPU time
per request it forwarded (what it takes from a shared machine), ``client_cpu_share`` what the clients used of one
core.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlplatform.bench.home import cli, fresh_home, sample_body
from mlplatform.bench.http_load import alternate
from mlplatform.serving.state import ServingState

MODEL = "mlplatform_iris"
TARGET_P50_OVERHEAD_MS, TARGET_RPS_RATIO = 2.0, 0.9


def bench_serve(seconds: float, concurrency: int) -> dict:
    with fresh_home("serve") as (settings, env, _folder):
        try:
            cli(env, "demo", "--json", "--keep-serving")
            record = next(r for r in ServingState(settings.home / "serving").read().values() if r.model == MODEL)
            if record.upstream is None:
                raise RuntimeError(f"{record.name} has no scoring server after the demo")
            version, gateway_pid = record.upstream.version, int(record.gateway.split(":")[0])
            body = sample_body(settings, MODEL, version)
            cpu, gateway_cpu, wall = time.process_time(), _cpu_seconds(gateway_pid), time.perf_counter()
            addresses = {"gateway": record.address, "bare": record.upstream.address}
            tallies = alternate(addresses, body, concurrency, seconds)
            client_cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
            gateway_cpu = _cpu_seconds(gateway_pid) - gateway_cpu
        finally:
            cli(env, "serve", "down")
    gateway, bare = tallies["gateway"].figures(), tallies["bare"].figures()
    answered = gateway["p50_ms"] is not None and bare["p50_ms"] is not None
    overhead = round(gateway["p50_ms"] - bare["p50_ms"], 3) if answered else None
    ratio = round(gateway["requests_per_s"] / bare["requests_per_s"], 3) if answered else None
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "model": MODEL,
        "version": version,
        **gateway,
        **{f"bare_{key}": value for key, value in bare.items()},
        "gateway_p50_overhead_ms": overhead,
        "rps_ratio": ratio,
        "targets_met": gateway["errors"] == bare["errors"] == 0
        and overhead is not None
        and overhead <= TARGET_P50_OVERHEAD_MS
        and ratio is not None
        and ratio >= TARGET_RPS_RATIO,
        "gateway_cpu_ms_per_request": round(gateway_cpu * 1000 / max(1, gateway["requests"]), 3),
        "client_cpu_share": round(client_cpu_share, 3),
        "first_errors": {name: tally.first_error for name, tally in tallies.items() if tally.first_error},
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
