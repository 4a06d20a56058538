"""A slow request still running on the old version when a switch happens completes, answered by the old version,
while the requests after the switch are answered by the new one. A real gateway in front of the real scoring
process; the slow request is a batch to a heavy model, sized from a measured one so that it outlasts the switch and
its drain."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import skops.io
from sklearn.neighbors import KNeighborsClassifier

from mlplatform.serving.reconcile import DRAIN_S, serve, stop_all
from mlplatform.serving.scoring_client import invocation_body

from conftest import Lifecycle, embedded_settings

MODEL, ALIAS = "mlplatform_iris", "Production"


def _post(address: str, body: bytes) -> tuple[int, str, int]:
    """Status, answering version and number of predictions of one invocation through the gateway."""
    request = urllib.request.Request(f"{address}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, response.headers["X-Model-Version"], len(json.loads(response.read())["predictions"])


def _timed(address: str, body: bytes) -> float:
    started = time.perf_counter()
    _post(address, body)
    return time.perf_counter() - started


def _in_flight(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/-/models", timeout=10) as response:
        return json.loads(response.read())["in_flight"]


def _register_slow_model(tracking_uri: str, artifacts: Path) -> pd.DataFrame:
    """Two versions of a brute-force nearest-neighbour classifier over 20,000 points: its predictions cost time in
    NumPy (the GIL released), as a heavy model's would, while the process goes on loading and answering. Returns a
    sample input."""
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(20_000, 4)), columns=["a", "b", "c", "d"])
    knn = KNeighborsClassifier(algorithm="brute").fit(features, rng.integers(0, 3, len(features)))
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)  # MLflow's global state, and this process's environment: put back below
    try:
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("slow", artifact_location=artifacts.as_uri()))
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(knn))
        for _ in range(2):
            with mlflow.start_run():
                mlflow.sklearn.log_model(knn, name="model", serialization_format="skops", skops_trusted_types=trusted,
                                         registered_model_name=MODEL)  # fmt: skip
    finally:
        mlflow.set_tracking_uri(previous)  # None unsets both
    return features.head(5)


def test_a_slow_request_survives_a_switch(tmp_path, migrated_mlflow_store):
    settings = embedded_settings(tmp_path / "home", migrated_mlflow_store, MLPLATFORM_SERVE_TIMEOUT_S="120")
    sample = _register_slow_model(settings.mlflow_tracking_uri, tmp_path / "artifacts")
    lifecycle = Lifecycle(settings)
    backend = lifecycle.serving()
    try:
        address = serve(backend, MODEL, ALIAS, 1, "", sample).address
        upstream = next(iter(backend.state.read().values())).upstream
        base = upstream.address.partition("/models/")[0]
        probe = pd.concat([sample] * 400, ignore_index=True)
        per_row_s = _timed(address, invocation_body(probe)) / len(probe)
        rows = int(2 * (DRAIN_S + 2) / per_row_s)  # twice the switch and its drain, at the measured pace
        slow_body = invocation_body(pd.concat([sample] * (rows // len(sample) + 1), ignore_index=True))
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(_post, address, slow_body)
            while not _in_flight(base) and not slow.done():
                time.sleep(0.05)
            assert _in_flight(base) == [{"model": MODEL, "version": 1, "requests": 1}]
            assert serve(backend, MODEL, ALIAS, 2, "", sample).action == "switched"
            after = _post(address, invocation_body(sample))
            answered = slow.result()
        assert answered == (200, "1", len(json.loads(slow_body)["dataframe_split"]["data"]))
        assert after == (200, "2", len(sample))
        unloads = [json.loads(line) for line in Path(upstream.log).read_text().splitlines()
                   if "scoring_model_unloaded" in line]  # fmt: skip
        assert [(u["version"], u["draining"], u["drained"]) for u in unloads] == [(1, 1, True)]
    finally:
        stop_all(backend)
        lifecycle.instance.dispose()
