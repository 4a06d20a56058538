"""The Docker backend's container specifications (no Docker engine runs here; the specs are what it sends)."""

from __future__ import annotations

from mlplatform.serving.backend import GatewayLimits
from mlplatform.serving.docker_backend import GATEWAY_PORT, SCORING_PORT, STATE_VOLUME, gateway_spec, scoring_spec

WHERE = ("mlplatform:1", "mlplatform", "http://mlflow:5000")


def test_scoring_container_is_labelled_private_limited_and_restartable():
    spec = scoring_spec("mlflow-serve-iris-prod", "iris", "prod", 3, *WHERE, production=True)
    assert spec["name"] == "mlflow-serve-iris-prod-v3"
    assert spec["labels"] == {
        "mlflow_serve": "true",
        "mlflow_model": "iris",
        "mlflow_alias": "prod",
        "mlflow_version": "3",
        "mlflow_port": str(SCORING_PORT),
        "mlplatform_role": "scoring",
    }
    assert spec["network"] == "mlplatform" and "ports" not in spec
    assert spec["restart_policy"] == {"Name": "unless-stopped"}
    assert spec["mem_limit"] and spec["nano_cpus"] > 0
    assert spec["command"][:3] == ["python", "-m", "mlplatform.serving.scoring_server"]
    assert spec["command"][-2:] == ["--load", "iris/3"] and str(SCORING_PORT) in spec["command"]
    assert spec["environment"] == {  # pickle loading is not allowed process-wide, nothing else of the platform's
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "_MLFLOW_IS_IN_SERVING_ENVIRONMENT": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def test_a_challenger_container_yields_the_cpu_to_production():
    production = scoring_spec("mlflow-serve-iris-prod", "iris", "prod", 3, *WHERE, production=True)
    challenger = scoring_spec("mlflow-serve-iris-challenger", "iris", "challenger", 4, *WHERE, production=False)
    assert 0 < challenger["cpu_shares"] < production["cpu_shares"]
    assert challenger["nano_cpus"] == production["nano_cpus"]  # the same ceiling: only the weight under contention


def test_gateway_is_the_stable_name_on_the_network_and_writes_its_own_folder_alone():
    limits = GatewayLimits(max_body_mb=8)
    own = "/var/lib/docker/volumes/serving-state/_data/mlflow-serve-iris-prod"
    spec = gateway_spec(
        "mlflow-serve-iris-prod", "iris", "prod", "mlplatform:1", "mlplatform", "serving-state", own, limits
    )
    assert spec["command"][-len(limits.arguments()) :] == limits.arguments()
    assert spec["name"] == "mlflow-serve-iris-prod"
    assert spec["labels"]["mlplatform_role"] == "gateway" and spec["labels"]["mlflow_port"] == str(GATEWAY_PORT)
    assert "ports" not in spec and spec["network"] == "mlplatform"
    assert spec["volumes"] == {
        "serving-state": {"bind": STATE_VOLUME, "mode": "ro"},
        own: {"bind": f"{STATE_VOLUME}/mlflow-serve-iris-prod", "mode": "rw"},  # the shadow pair records
    }
    assert "environment" not in spec
