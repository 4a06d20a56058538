"""Server names, and the desired {model: {alias: version}} map read from a real MLflow registry (all pages)."""

from __future__ import annotations

import re

import pytest

from mlplatform.model_registry import PAGE_SIZE
from mlplatform.serving.desired import changes, desired_servers
from mlplatform.serving.naming import MAX_LENGTH, server_name


@pytest.mark.parametrize(
    ("model", "alias"),
    [("iris", "prod"), ("Iris", "Production"), ("a" * 80, "Production"), ("m/with spaces", "x@y")],
)
def test_names_are_valid_docker_names(model, alias):
    name = server_name(model, alias)
    assert len(name) <= MAX_LENGTH and re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name)
    assert name.startswith("mlflow-serve-")


def test_plain_names_stay_readable_and_lookalikes_never_collide():
    assert server_name("iris", "prod") == "mlflow-serve-iris-prod"
    names = {server_name(m, a) for m in ("iris", "Iris", "IRIS") for a in ("Test", "test", "TEST")}
    assert len(names) == 9


def test_changes_lists_additions_moves_and_removals():
    served = {"a": {"Production": 1}, "b": {"Production": 2, "Test": 1}}
    desired = {"a": {"Production": 2}, "b": {"Production": 2}, "c": {"Production": 1}}
    assert changes(served, desired) == [
        ("a", "Production", 1, 2),
        ("b", "Test", 1, None),
        ("c", "Production", None, 1),
    ]
    assert changes(desired, desired) == []


def test_desired_servers_reads_every_page_and_compares_aliases_exactly(lifecycle):
    registry = lifecycle.registry()
    client = registry.client
    experiment = client.create_experiment("desired")
    run = client.create_run(experiment)
    total = PAGE_SIZE + 7
    for i in range(total):
        name = f"model_{i:03d}"
        client.create_registered_model(name)
        version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(name, "Production" if i % 2 == 0 else "production", version.version)
    desired = desired_servers(registry, ("Production",), ("model_*",))
    assert len(desired) == (total + 1) // 2
    assert desired["model_000"] == {"Production": 1} and "model_001" not in desired
    assert "model_106" in desired  # on the second page
