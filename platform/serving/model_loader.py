"""How a scoring server loads one registered version: downloaded, checked by the platform's trust check, and only
then deserialized, with pickle loading allowed for that load alone (never for the whole process)."""

from __future__ import annotations

import tempfile
from pathlib import Path

# What every load needs, imported when the scoring server starts (several seconds, overlapping other work when the
# server is started early) rather than by the first load, which a switch or the demo waits for.
import mlflow.sklearn  # noqa: F401
import skops.io  # noqa: F401
from mlflow.artifacts import download_artifacts
from mlflow.pyfunc import PyFuncModel, load_model
from mlflow.tracking import MlflowClient

from mlplatform.model_registry import pickle_allowed
from mlplatform.model_trust import check_model_folder


def load_trusted(client: MlflowClient, model: str, version: int) -> PyFuncModel:
    """The version as MLflow's pyfunc (what ``mlflow models serve`` predicts with); ``UntrustedModel`` if its files
    are not a model the platform would have written. The very files checked are the files loaded."""
    with tempfile.TemporaryDirectory(prefix="mlplatform-load-") as folder:
        uri = client.get_model_version_download_uri(model, str(version))
        local = download_artifacts(artifact_uri=uri, dst_path=folder, tracking_uri=client.tracking_uri)
        check_model_folder(Path(local), f"{model} v{version}")
        with pickle_allowed():
            return load_model(local)
