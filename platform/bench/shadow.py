"""``mlplatform bench shadow``: what shadow traffic costs production's answers.

In a fresh embedded home, ``mlplatform demo --keep-serving`` serves Production; the same version is then served as
``challenger`` too (a second model@alias, as the alias sensor serves it). Clients post one sample row to the
Production gateway for S seconds with the shadow share off and at N% in turn, one-second slices in alternating
order (the gateway re-reads its traffic file between slices), so both meet the same machine. Target: production's
p50 grows by at most ``TARGET_P50_ADDED_MS`` with the shadow on, no failed request. The challenger being the same
version, every compared pair must agree: ``shadow_agreement_rate`` checks the comparison itself.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

from mlplatform.bench.home import cli, fresh_home, sample_body
from mlplatform.bench.http_load import SLICE_S, Tally, alternate
from mlplatform.contract import load_sample_input
from mlplatform.resources.build import build_resources
from mlplatform.serving.reconcile import serve
from mlplatform.serving.traffic import set_split

MODEL, CHALLENGER = "mlplatform_iris", "challenger"
TARGET_P50_ADDED_MS = 1.0
ACTOR = "bench shadow"


def bench_shadow(seconds: float, concurrency: int, share: float) -> dict:
    with fresh_home("shadow") as (settings, env, _folder):
        try:
            cli(env, "demo", "--json", "--keep-serving")
            resources = build_resources(settings, environ={})
            backend, engine, registry = (
                resources["serving"].open(),
                resources["app_db"].engine,
                resources["mlflow"].registry(),
            )
            production = next(r for r in backend.state.read().values() if r.model == MODEL)
            if production.upstream is None:
                raise RuntimeError(f"{production.name} has no scoring server after the demo")
            version = production.upstream.version
            sample = load_sample_input(registry, registry.version(MODEL, version).run_id)
            serve(backend, MODEL, CHALLENGER, version, f"models:/{MODEL}/{version}", sample)
            body = sample_body(settings, MODEL, version)
            tallies = {"off": Tally(), "on": Tally()}
            slices = max(2, round(seconds / SLICE_S))
            for number in range(slices):
                for side in ("off", "on") if number % 2 == 0 else ("on", "off"):
                    percent = share if side == "on" else 0
                    set_split(
                        backend.state, engine, MODEL, settings.production_alias, "shadow", CHALLENGER, percent, ACTOR
                    )
                    _wait_share(production.address, percent)
                    _add(tallies[side], alternate({side: production.address}, body, concurrency, seconds / slices))
            metrics = urllib.request.urlopen(f"{production.address}/metrics", timeout=10).read().decode()
        finally:
            cli(env, "serve", "down")
    off, on = tallies["off"].figures(), tallies["on"].figures()
    pairs = {outcome: _total(metrics, "mlflow_serve_shadow_pairs_total", outcome) for outcome in ("agree", "disagree")}
    answered = off["p50_ms"] is not None and on["p50_ms"] is not None
    added = round(on["p50_ms"] - off["p50_ms"], 3) if answered else None
    compared = pairs["agree"] + pairs["disagree"]
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "share": share,
        "model": MODEL,
        "version": version,
        **{f"shadow_off_{key}": value for key, value in off.items()},
        **{f"shadow_on_{key}": value for key, value in on.items()},
        "p50_added_ms": added,
        "shadow_pairs": compared + _total(metrics, "mlflow_serve_shadow_pairs_total", "error"),
        "shadow_errors": _total(metrics, "mlflow_serve_shadow_pairs_total", "error"),
        "shadow_dropped": _total(metrics, "mlflow_serve_shadow_dropped_total", "queue_full"),
        "shadow_agreement_rate": round(pairs["agree"] / compared, 4) if compared else None,
        "target_met": off["errors"] == on["errors"] == 0 and added is not None and added <= TARGET_P50_ADDED_MS,
    }


def _add(tally: Tally, more: dict[str, Tally]) -> None:
    for part in more.values():
        tally.latencies += part.latencies
        tally.errors += part.errors
        tally.seconds += part.seconds


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
