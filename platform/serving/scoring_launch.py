"""How a scoring server (``scoring_server``) is started and addressed, for the backends that start one.

Apart from the server itself: a process that only starts servers or routes to them need not import what the server
loads models with (``mlflow.sklearn`` and skops, about 3 s), a serving run above all.
"""

from __future__ import annotations

import urllib.parse


def scoring_command(python: tuple[str, ...], host: str, port: int, load: tuple[str, ...] = ()) -> list[str]:
    """How the server is started, whatever runs it (``python`` runs a module: ``("python", "-m")``); ``load``
    holds ``<model>/<version>`` to load before it listens."""
    loads = [argument for item in load for argument in ("--load", item)]
    return [*python, "mlplatform.serving.scoring_server", "--host", host, "--port", str(port), *loads]


def scoring_environment(tracking_uri: str) -> dict[str, str]:
    """What a scoring server gets of the platform's configuration: where the models are, and nothing else (pickle
    loading is allowed inside its loader alone); MLflow's flag for code running in a scoring server, as
    ``mlflow models serve`` sets it; no download progress bars in the log."""
    return {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "_MLFLOW_IS_IN_SERVING_ENVIRONMENT": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def model_path(model: str, version: int) -> str:
    """Where a version answers in the server: the path an upstream address ends with."""
    return f"/models/{urllib.parse.quote(model, safe='')}/{version}"
