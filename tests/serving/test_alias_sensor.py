"""The alias sensor and serving job with real processes: a real Dagster instance, the platform's scoring process
behind the gateway, the registry in a real MLflow store. The steps build on each other, in file order."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from dagster import SkipReason

from mlplatform.aliases import move_alias
from mlplatform.appdb.alias_history import latest_change
from mlplatform.resources.build import build_resources
from mlplatform.serving.naming import server_name
from mlplatform.serving.processes import free_port, running
from mlplatform.serving.reconcile import stop_all
from mlplatform.serving.rollout import move_and_serve
from mlplatform.serving.scoring_client import ping

from conftest import Lifecycle, embedded_settings
from sensor_world import World

MODEL = "mlplatform_iris"


@pytest.fixture(scope="module")
def world(tmp_path_factory, migrated_mlflow_store):
    lifecycle = Lifecycle(embedded_settings(tmp_path_factory.mktemp("serving") / "home", migrated_mlflow_store))
    lifecycle.load("iris")
    lifecycle.run("training_job", "iris")  # v1: challenger and Production
    lifecycle.run("training_job", "iris")  # v2: challenger
    yield World(lifecycle, MODEL)
    stop_all(lifecycle.serving())
    lifecycle.instance.dispose()


def test_a_production_alias_gets_served_and_a_model_the_platform_does_not_own_never_is(world):
    client, v1 = world.registry.client, world.registry.version(MODEL, 1)
    client.create_registered_model("someone_elses_model")
    foreign = client.create_model_version("someone_elses_model", v1.source, run_id=v1.run_id)
    client.set_registered_model_alias("someone_elses_model", "Production", foreign.version)
    result, runs = world.tick_and_run()
    assert [r.run_config["ops"]["reconcile_server"]["config"]["model"] for r in result.run_requests] == [MODEL]
    assert [r.run_config["ops"]["reconcile_server"]["config"]["version"] for r in result.run_requests] == [1]
    assert all(r.success for r in runs)
    [server] = world.status()
    assert server["healthy"] and server["version"] == 1
    version, predictions = world.invoke(server["url"], world.sample_payload())
    assert version == "1" and len(predictions) == len(world.sample)


def test_nothing_changed_means_no_run(world):
    result = world.tick()
    assert result.run_requests == []


def test_moving_the_alias_switches_with_no_failed_request(world):
    [before] = world.status()
    url, old_upstream = before["url"], before["record"].upstream.address
    outcomes, stop = [], threading.Event()

    def client():
        deadline = time.monotonic() + 240
        while not stop.is_set() and time.monotonic() < deadline and len(outcomes) < 20000:
            try:
                outcomes.append(world.invoke(url, world.sample_payload())[0])
            except (urllib.error.URLError, OSError) as exc:
                outcomes.append(f"failed: {exc}")

    caller = threading.Thread(target=client)
    caller.start()
    move_alias(world.registry, world.lifecycle.engine, MODEL, "Production", 2, "test", "switch")
    result, runs = world.tick_and_run()
    time.sleep(0.5)
    stop.set()
    caller.join()
    assert [r.success for r in runs] == [True]
    assert not [o for o in outcomes if o.startswith("failed")]
    assert outcomes[0] == "1" and outcomes[-1] == "2" and set(outcomes) == {"1", "2"}
    [after] = world.status()
    assert after["url"] == url and after["version"] == 2 and after["healthy"]
    assert not ping(old_upstream)  # v1 unloaded from the scoring process
    metrics = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    assert (
        f'mlflow_serve_requests_total{{alias="Production",code="200",endpoint="invocations",model="{MODEL}",version="2"}}'
        in metrics
    )
    assert "mlflow_serve_request_duration_seconds_bucket" in metrics
    targets = json.loads((world.lifecycle.settings.home / "serving" / "targets.json").read_text())
    assert targets[0]["labels"] == {
        "model": MODEL,
        "alias": "Production",
        "version": "2",
        "server": after["record"].name,
    }


def test_a_killed_server_is_repaired_on_the_next_tick(world):
    [before] = world.status()
    os.killpg(int(before["record"].upstream.handle.split(":")[0]), signal.SIGKILL)
    time.sleep(0.5)
    assert not world.status()[0]["healthy"]
    first, second = world.evaluate(), world.evaluate()  # two daemons looking at the same state ask for one run
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    assert len(first.run_requests) == 1 and "time" not in first.run_requests[0].run_key
    result, runs = world.tick_and_run()
    assert [r.run_config["ops"]["reconcile_server"]["config"]["reason"] for r in result.run_requests] == [
        "server unhealthy or on another version"
    ]
    assert all(r.success for r in runs)
    [after] = world.status()
    assert after["healthy"] and after["version"] == 2 and after["url"] == before["url"]


def test_mlflow_down_is_a_skipped_tick_and_nothing_is_lost(world):
    down = world.lifecycle.settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})
    result = world.evaluate(mlflow=build_resources(down, environ={})["mlflow"])
    assert isinstance(result, SkipReason) and "not readable" in result.skip_message
    assert "127.0.0.1" not in result.skip_message  # the store's address stays out of Dagster's messages
    after = world.tick()  # MLflow is back: the served state the cursor holds is intact, so nothing needs a run
    assert after.run_requests == [] and json.loads(after.cursor)["served"] == {MODEL: {"Production": 2}}


def test_a_broken_version_leaves_the_old_server_and_rolls_production_back(world, tmp_path):
    client = world.registry.client
    good = client.get_model_version(MODEL, "2")
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {python_function: {loader_module: no.such.module}}\n")
    version = client.create_model_version(MODEL, str(broken), run_id=good.run_id, tags=dict(good.tags))
    move_alias(world.registry, world.lifecycle.engine, MODEL, "Production", int(version.version), "test", "bad release")
    result, runs = world.tick_and_run()
    [run] = runs
    assert not run.success
    [failure] = [e for e in run.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert f"v{version.version} never became healthy as Production" in message and "rolled back to v2" in message
    assert "not a scikit-learn model" in message  # the scoring server's trust check refused it, and said why
    assert int(world.registry.require_alias(MODEL, "Production").version) == 2
    [server] = world.status()
    assert server["healthy"] and server["version"] == 2
    result, runs = world.tick_and_run()  # the sensor sees the rollback; v2 is already served
    assert all(r.success for r in runs) and world.status()[0]["version"] == 2


def test_the_platforms_own_move_switches_at_once_and_needs_no_serving_run(world):
    serving = world.lifecycle.defs.resources["serving"]
    before, outcome = move_and_serve(
        world.registry, world.lifecycle.engine, serving, MODEL, "Production", 1, "test", "moved by the platform"
    )
    assert before == 2 and outcome is not None and outcome.action == "switched"
    [server] = world.status()  # switched when move_and_serve returns, with no sensor tick and no run
    assert server["version"] == 1 and server["healthy"]
    assert world.invoke(server["url"], world.sample_payload())[0] == "1"
    assert latest_change(world.lifecycle.engine, MODEL, "Production")["reason"] == "moved by the platform"
    result = world.tick()
    assert result.run_requests == [] and json.loads(result.cursor)["served"] == {MODEL: {"Production": 1}}


def test_a_move_another_process_is_rolling_out_is_decided_on_a_later_tick(world):
    state = world.lifecycle.serving().state
    with state.rolling_out(server_name(MODEL, "Production")):
        move_alias(world.registry, world.lifecycle.engine, MODEL, "Production", 2, "test", "switch")
        held = world.tick()
        assert held.run_requests == [] and json.loads(held.cursor)["served"] == {MODEL: {"Production": 1}}
    result, runs = world.tick_and_run()  # that process ended without switching: this tick asks for the run
    assert [r.run_config["ops"]["reconcile_server"]["config"]["version"] for r in result.run_requests] == [2]
    assert [r.success for r in runs] == [True]
    [server] = world.status()
    assert server["version"] == 2 and server["healthy"]


def test_a_serving_run_that_starts_late_serves_the_version_the_alias_names_by_then(world):
    move_alias(world.registry, world.lifecycle.engine, MODEL, "Production", 1, "test", "moved away")
    [request] = world.tick().run_requests
    assert request.run_config["ops"]["reconcile_server"]["config"]["version"] == 1
    move_alias(world.registry, world.lifecycle.engine, MODEL, "Production", 2, "test", "and back before the run")
    run = world.run(request)
    assert run.success
    [server] = world.status()  # v1 is never brought back: the run read the alias when it ran
    assert server["version"] == 2 and server["healthy"]
    assert world.tick_and_run()[1] == []  # the sensor sees v2 served: no run


@pytest.mark.parametrize(
    ("payload", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (json.dumps({"dataframe_split": {"columns": ["wrong"], "data": [[1.0]]}}).encode(), "application/json", 400),
        (json.dumps({"dataframe_records": [{"sepal_length_cm": "abc"}]}).encode(), "application/json", 400),
        (b"hello", "text/plain", 415),
    ],
)
def test_malformed_payloads_get_a_4xx_with_a_message_and_the_server_stays_up(world, payload, content_type, status):
    [server] = world.status()
    with pytest.raises(urllib.error.HTTPError) as error:
        world.invoke(server["url"], payload, content_type)
    assert error.value.code == status and error.value.read()
    assert world.status()[0]["healthy"]


def test_a_deleted_alias_stops_its_server(world):
    [before] = world.status()
    move_alias(world.registry, world.lifecycle.engine, MODEL, "Production", None, "test", "retired")
    result, runs = world.tick_and_run()
    assert [r.run_config["ops"]["reconcile_server"]["config"]["version"] for r in result.run_requests] == [0]
    assert all(r.success for r in runs)
    assert world.status() == []
    assert not running(before["record"].gateway) and not running(before["record"].upstream.handle)


def test_the_platforms_own_move_leaves_a_model_alias_not_served_yet_to_the_sensor(world):
    serving = world.lifecycle.defs.resources["serving"]
    before, outcome = move_and_serve(
        world.registry, world.lifecycle.engine, serving, MODEL, "Production", 2, "test", "back again"
    )
    assert before is None and outcome is None and world.status() == []
    result = world.tick()
    assert [r.run_config["ops"]["reconcile_server"]["config"]["version"] for r in result.run_requests] == [2]
