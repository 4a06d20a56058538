"""How one model version's scoring server is started, whatever runs it: MLflow's own ``mlflow models serve``,
given the tracking store and nothing else of the platform's configuration."""

from __future__ import annotations


def scoring_command(model_uri: str, host: str, port: int, mlflow: tuple[str, ...] = ("mlflow",)) -> list[str]:
    return [*mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", host, "-p", str(port)]


def scoring_environment(tracking_uri: str) -> dict[str, str]:
    """The platform's variables a scoring server gets: where the model is. MLflow deserializes scikit-learn models
    only when pickle loading is allowed; the server loads exactly one of the platform's registered versions."""
    return {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
