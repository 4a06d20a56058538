"""The shadow part of ``mlplatform bench serve``: what shadow traffic costs production's answers.

In the home ``bench serve`` set up, a new version registered from Production's files is served as ``challenger`` (a
second model@alias, as the alias sensor serves it, so it lands where a challenger lands: Production's very version
would share production's copy instead). Clients post one sample row to the Production gateway for S seconds with the
shadow share off and at N% in turn, one-second slices in alternating order (the gateway re-reads its traffic file
between slices), so both meet the same machine. Target: production's p50 grows by at most ``TARGET_P50_ADDED_MS``
with the shadow on, no failed request. The challenger being the same files, every compared pair must agree:
``agreement_rate`` checks the comparison itself. ``gateway_cpu_ms_per_request`` on each side is the Production
gateway's own CPU time per answered request: the difference is what mirroring costs it.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable

from sqlalchemy import Engine

from mlplatform.bench.http_load import SLICE_S, Tally, alternate
from mlplatform.contract import load_sample_input
from mlplatform.serving.backend import ServingBackend
from mlplatform.serving.reconcile import serve
from mlplatform.serving.state import ServerRecord
from mlplatform.serving.traffic import set_split

CHALLENGER = "challenger"
TARGET_P50_ADDED_MS = 1.0
ACTOR = "bench serve"


def shadow_cost(
    backend: ServingBackend,
    engine: Engine,
    registry,
    production: ServerRecord,
    production_alias: str,
    body: bytes,
    seconds: float,
    concurrency: int,
    share: float,
    gateway_cpu_s: Callable[[], float],
) -> dict:
    """Serve the challenger, load production with the share off and on in turn; the figures of both sides.
    ``gateway_cpu_s``: the Production gateway's CPU seconds so far."""
    if production.upstream is None:
        raise RuntimeError(f"{production.name} has no scoring server")
    model = production.model
    files = registry.version(model, production.upstream.version)
    version = int(registry.register(files.source, files.run_id, model, dict(files.tags)).version)
    sample = load_sample_input(registry, files.run_id)
    serve(backend, model, CHALLENGER, version, f"models:/{model}/{version}", sample)
    tallies, cpu = {"off": Tally(), "on": Tally()}, {"off": 0.0, "on": 0.0}
    slices = max(2, round(seconds / SLICE_S))
    for number in range(slices):
        for side in ("off", "on") if number % 2 == 0 else ("on", "off"):
            percent = share if side == "on" else 0
            set_split(backend.state, engine, model, production_alias, "shadow", CHALLENGER, percent, ACTOR)
            _wait_share(production.address, percent)
            before = gateway_cpu_s()
            _add(tallies[side], alternate({side: production.address}, body, concurrency, seconds / slices))
            cpu[side] += gateway_cpu_s() - before
    metrics = urllib.request.urlopen(f"{production.address}/metrics", timeout=10).read().decode()
    off, on = tallies["off"].figures(), tallies["on"].figures()
    outcomes = {o: _total(metrics, "mlflow_serve_shadow_pairs_total", o) for o in ("agree", "disagree", "error")}
    answered = off["p50_ms"] is not None and on["p50_ms"] is not None
    added = round(on["p50_ms"] - off["p50_ms"], 3) if answered else None
    compared = outcomes["agree"] + outcomes["disagree"]
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "share": share,
        **{f"off_{key}": value for key, value in off.items()},
        **{f"on_{key}": value for key, value in on.items()},
        **{f"{side}_gateway_cpu_ms_per_request": _per_request(cpu[side], tallies[side]) for side in ("off", "on")},
        "p50_added_ms": added,
        "pairs": compared + outcomes["error"],
        "errors": outcomes["error"],
        "dropped": _total(metrics, "mlflow_serve_shadow_dropped_total", "queue_full"),
        "agreement_rate": round(outcomes["agree"] / compared, 4) if compared else None,
        "target_met": off["errors"] == on["errors"] == 0 and added is not None and added <= TARGET_P50_ADDED_MS,
    }


def _add(tally: Tally, more: dict[str, Tally]) -> None:
    for part in more.values():
        tally.latencies += part.latencies
        tally.errors += part.errors
        tally.seconds += part.seconds


def _per_request(cpu_s: float, tally: Tally) -> float:
    """CPU milliseconds per request; the warm-up requests of each slice are not counted, so this errs a bit high."""
    return round(cpu_s * 1000 / max(1, len(tally.latencies) + tally.errors), 3)


def _wait_share(address: str, percent: float, timeout_s: float = 30) -> None:
    """Until the gateway routes with the share (it re-reads its traffic file by itself)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{address}/-/upstream", timeout=5) as response:
            splits = json.loads(response.read())["splits"]
        if splits.get("shadow", {}).get("percent", 0) == percent:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the gateway at {address} did not take the shadow share {percent}% within {timeout_s} s")


def _total(metrics: str, name: str, label: str) -> int:
    """The sum of a counter's series carrying ``label`` as a label value, from the Prometheus text."""
    pattern = rf'^{name}{{[^}}]*="{re.escape(label)}"[^}}]*}} (\S+)$'
    return int(sum(float(value) for value in re.findall(pattern, metrics, flags=re.MULTILINE)))
