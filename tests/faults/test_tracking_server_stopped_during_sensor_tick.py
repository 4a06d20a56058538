"""The MLflow tracking server stopped with an alias change pending: the alias sensor's tick is a skip naming MLflow,
the served version keeps answering, and once the server is back the next tick makes the switch."""

from __future__ import annotations

from dagster import SkipReason

from mlplatform.aliases import move_alias
from mlplatform.appdb.alias_history import history
from mlplatform.serving.reconcile import stop_all
from mlplatform.serving.scoring_client import ping

from conftest import Lifecycle, embedded_settings
from mlflow_stack import TRACKING_PASSWORD
from sensor_world import World

DATASET, MODEL = "iris", "sensorfault_iris"


def _served_versions(result) -> list[int]:
    return [r.run_config["ops"]["reconcile_server"]["config"]["version"] for r in result.run_requests]


def test_a_tick_without_mlflow_skips_serving_goes_on_and_the_next_tick_switches(
    mlflow_stack, tmp_path, migrated_mlflow_store
):
    settings = embedded_settings(
        tmp_path / "home",
        migrated_mlflow_store,
        MLFLOW_TRACKING_URI=mlflow_stack.tracking_uri(),
        MLFLOW_MODEL_NAME="sensorfault",
        MLFLOW_EXPERIMENT_NAME="sensor-fault",
    )
    lifecycle = Lifecycle(settings)
    try:
        lifecycle.load(DATASET)
        lifecycle.run("training_job", DATASET)  # v1: Production
        world = World(lifecycle, MODEL)
        result, runs = world.tick_and_run()
        assert _served_versions(result) == [1] and all(r.success for r in runs)
        [before] = world.status()
        v1 = world.registry.version(MODEL, 1)
        v2 = world.registry.register(v1.source, v1.run_id, MODEL, dict(v1.tags))
        move_alias(world.registry, lifecycle.engine, MODEL, "Production", int(v2.version), "test", "release v2")

        mlflow_stack.tracking.stop()
        try:
            skipped = world.tick()
            assert isinstance(skipped, SkipReason), skipped
            assert "MLflow registry not readable" in skipped.skip_message
            assert TRACKING_PASSWORD not in skipped.skip_message
            assert world.invoke(before["url"], world.sample_payload())[0] == "1"  # serving does not need MLflow
        finally:
            mlflow_stack.tracking.start()

        result, runs = world.tick_and_run()  # the change made while MLflow was away is not lost
        assert _served_versions(result) == [2] and all(r.success for r in runs)
        [after] = world.status()
        assert after["url"] == before["url"] and after["healthy"] and after["version"] == 2
        assert world.invoke(after["url"], world.sample_payload())[0] == "2"
        assert not ping(before["record"].upstream.address)  # v1 unloaded
        changes = [(c["from_version"], c["to_version"]) for c in history(lifecycle.engine, MODEL, "Production")]
        assert changes[-1] == (1, 2)
    finally:
        stop_all(lifecycle.serving())
        lifecycle.instance.dispose()
