"""How one model version's scoring server is started, whatever runs it: MLflow's own ``mlflow models serve``,
given the tracking store and nothing else of the platform's configuration."""

from __future__ import annotations


def scoring_command(model_uri: str, host: str, port: int, mlflow: tuple[str, ...] = ("mlflow",)) -> list[str]:
    return [*mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", host, "-p", str(port)]


def scoring_environment(tracking_uri: str) -> dict[str, str]:
    """What a scoring server gets of the platform's configuration: where the model is. MLflow deserializes
    scikit-learn models only when pickle loading is allowed; the server loads one registered version that passed
    the platform's trust check (``mlplatform.model_trust``) just before it was started."""
    return {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "UVICORN_ACCESS_LOG": "false",  # a line per request would grow the server's log without bound
    }
