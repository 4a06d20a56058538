"""The platform's scoring server against MLflow's own: the same answers and error JSON for every payload format, two
versions in one process, unloading one without touching the other, an untrusted version refused, a challenger in a
second process at a lower CPU priority, and production's process dying, then repaired while the challenger's keeps
answering. One training, one bare ``mlflow models serve``, production's scoring process for the module."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlplatform.bench.serve import bare_mlflow_serve
from mlplatform.contract import load_sample_input
from mlplatform.serving.local_backend import OTHERS_NICE
from mlplatform.serving.processes import running
from mlplatform.serving.reconcile import health, serve, stop_all
from mlplatform.serving.scoring_client import ServerError, ping

from conftest import Lifecycle, embedded_settings

MODEL = "mlplatform_iris"
PRODUCTION = "Production"


@pytest.fixture(scope="module")
def world(tmp_path_factory, migrated_mlflow_store):
    folder = tmp_path_factory.mktemp("scoring")
    lifecycle = Lifecycle(embedded_settings(folder / "home", migrated_mlflow_store))
    lifecycle.load("iris")
    lifecycle.run("training_job", "iris")  # v1
    registry = lifecycle.registry()
    v1 = registry.version(MODEL, 1)
    registry.register(v1.source, v1.run_id, MODEL, dict(v1.tags))  # v2, the same files
    backend = lifecycle.serving()
    sample = load_sample_input(registry, v1.run_id)
    with ThreadPoolExecutor(1) as pool:
        loaded = pool.submit(backend.start_upstream, "", MODEL, PRODUCTION, 1, "")  # both servers start at once
        with bare_mlflow_serve(lifecycle.settings.mlflow_tracking_uri, MODEL, 1, folder / "bare.log") as (bare, _):
            yield {"backend": backend, "bare": bare, "sample": sample, "registry": registry, "v1": loaded.result()}
    stop_all(backend)
    backend.stop_upstream(loaded.result())  # loaded with no model@alias: unloaded here, the emptied process stops
    lifecycle.instance.dispose()


@pytest.fixture(scope="module")
def v1(world):
    return world["v1"]


def _call(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


ROWS = [{"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2},
        {"sepal_length_cm": 6.7, "sepal_width_cm": 3.0, "petal_length_cm": 5.2, "petal_width_cm": 2.3}]  # fmt: skip
COLUMNS = list(ROWS[0])
SPLIT = {"columns": COLUMNS, "data": [list(r.values()) for r in ROWS]}
PAYLOADS = {
    "dataframe_split": (json.dumps({"dataframe_split": SPLIT}), "application/json"),
    "dataframe_records": (json.dumps({"dataframe_records": ROWS}), "application/json"),
    "instances": (json.dumps({"instances": ROWS}), "application/json"),
    "inputs": (json.dumps({"inputs": {c: [r[c] for r in ROWS] for c in COLUMNS}}), "application/json"),
    "csv": (",".join(COLUMNS) + "\n" + "\n".join(",".join(str(v) for v in r.values()) for r in ROWS), "text/csv"),
    "utf-8 charset": (json.dumps({"dataframe_split": SPLIT}), "application/json; charset=utf-8"),
    "invalid json": ("{not json", "application/json"),
    "no known key": (json.dumps({"rows": ROWS}), "application/json"),
    "missing column": (json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}), "application/json"),
    "wrong type": (json.dumps({"dataframe_records": [{**ROWS[0], "sepal_length_cm": "abc"}]}), "application/json"),
    "other charset": (json.dumps({"dataframe_split": SPLIT}), "application/json; charset=latin-1"),
    "unknown content type": ("hello", "text/plain"),
}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_invocations_answer_as_mlflow_models_serve_does(world, v1, payload):
    body, content_type = PAYLOADS[payload]
    ours = _call(f"{v1.address}/invocations", body.encode(), content_type)
    mlflow = _call(f"{world['bare']}/invocations", body.encode(), content_type)
    assert ours[:2] == mlflow[:2]
    if mlflow[1] == "application/json":
        assert _unordered_sets(json.loads(ours[2])) == _unordered_sets(json.loads(mlflow[2]))
        assert ours[0] == 200 or set(json.loads(ours[2])) >= {"error_code", "message"}
    else:
        assert ours[2] == mlflow[2]


def _unordered_sets(answer: dict) -> dict:
    """``answer`` with the items of any Python set quoted in its message sorted: MLflow's message on a payload with
    no known key prints a set, whose order changes from one process to another (hash randomization)."""

    def sorted_items(found: re.Match) -> str:
        return "{" + ", ".join(sorted(found.group(1).split(", "))) + "}"

    return (
        {**answer, "message": re.sub(r"\{([^{}]*)\}", sorted_items, answer["message"])}
        if "message" in answer
        else answer
    )


def test_ping_health_and_version_answer_as_mlflow_models_serve_does(world, v1):
    for route in ("ping", "health", "version"):
        assert _call(f"{v1.address}/{route}") == _call(f"{world['bare']}/{route}")


def test_two_versions_share_one_process_and_unloading_one_leaves_the_other(world, v1):
    backend = world["backend"]
    v2 = backend.start_upstream("", MODEL, PRODUCTION, 2, "")
    assert v2.handle == v1.handle and v2.address != v1.address
    body, content_type = PAYLOADS["dataframe_split"]
    assert _call(f"{v2.address}/invocations", body.encode(), content_type)[0] == 200
    base = v1.address.split("/models/")[0]
    assert backend.scoring.hosted(base) == [{"model": MODEL, "version": 1}, {"model": MODEL, "version": 2}]
    backend.stop_upstream(v2)
    assert not ping(v2.address) and _call(f"{v2.address}/ping")[0] == 404
    assert _call(f"{v1.address}/invocations", body.encode(), content_type)[0] == 200
    assert running(v1.handle)


def test_an_untrusted_version_is_refused_and_the_loaded_ones_keep_serving(world, v1, tmp_path):
    registry = world["registry"]
    broken = tmp_path / "pickled-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {python_function: {loader_module: mlflow.sklearn}, sklearn: {}}\n")
    version = registry.register(str(broken), registry.version(MODEL, 1).run_id, MODEL, {})
    with pytest.raises(ServerError, match="not a scikit-learn model|serialized as"):
        world["backend"].start_upstream("", MODEL, PRODUCTION, int(version.version), "")
    assert ping(v1.address) and running(v1.handle)


def test_a_challenger_runs_at_low_priority_beside_production_and_production_dying_leaves_it_answering(world, v1):
    backend, sample = world["backend"], world["sample"]
    for alias, version in ((PRODUCTION, 1), ("challenger", 2)):
        serve(backend, MODEL, alias, version, "", sample)
    records = {r.alias: r for r in backend.state.read().values()}
    production, challenger = records[PRODUCTION].upstream, records["challenger"].upstream
    assert production.handle == v1.handle != challenger.handle
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert _nice_levels(production.handle) == {ours}
    assert _nice_levels(challenger.handle) == {min(19, ours + OTHERS_NICE)}  # every thread of it
    os.killpg(int(production.handle.split(":")[0]), signal.SIGKILL)
    assert health(backend, list(records.values())) == {
        records[PRODUCTION].name: False,
        records["challenger"].name: True,
    }
    outcomes = {
        r.alias: serve(backend, MODEL, r.alias, r.upstream.version, "", sample).action for r in records.values()
    }
    assert outcomes == {PRODUCTION: "repaired", "challenger": "unchanged"}
    repaired = {r.alias: r for r in backend.state.read().values()}
    assert all(health(backend, list(repaired.values())).values())
    assert repaired[PRODUCTION].upstream.handle not in (production.handle, challenger.handle)
    assert [r.address for r in repaired.values()] == [r.address for r in records.values()]  # the stable addresses
    stop_all(backend)
    assert not running(repaired[PRODUCTION].upstream.handle) and not running(challenger.handle)  # emptied: stopped


def _nice_levels(handle: str) -> set[int]:
    """The nice levels of every thread of the process ``handle`` names (field 19 of /proc/<pid>/task/<tid>/stat)."""
    tasks = Path(f"/proc/{handle.split(':')[0]}/task").iterdir()
    return {int((task / "stat").read_text().rsplit(") ", 1)[1].split()[16]) for task in tasks}


def test_a_challenger_on_the_production_version_shares_its_copy_and_outlives_production_moving(world):
    backend, sample = world["backend"], world["sample"]
    production = serve(backend, MODEL, PRODUCTION, 1, "", sample)
    challenger = serve(backend, MODEL, "challenger", 1, "", sample)  # right after a promotion: the same version
    records = {r.alias: r for r in backend.state.read().values()}
    assert records["challenger"].upstream == records[PRODUCTION].upstream  # one copy, production's process
    assert not backend.others.record_file.exists()  # no second process started for it
    body, content_type = PAYLOADS["dataframe_split"]
    serve(backend, MODEL, PRODUCTION, 2, "", sample)  # production moves on: the challenger's copy stays loaded
    assert _call(f"{challenger.address}/invocations", body.encode(), content_type)[0] == 200
    assert _call(f"{production.address}/invocations", body.encode(), content_type)[0] == 200
    stop_all(backend)
    assert not running(records[PRODUCTION].upstream.handle)  # emptied: stopped
