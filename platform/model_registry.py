"""The platform's one way to MLflow: a small layer over ``MlflowClient`` that the MLflow resource builds and domain
code receives. Nothing here touches MLflow's global state (``mlflow.set_tracking_uri``, the active run): every
call names its store, so two stores in one process, a sensor and a run worker never step on each other.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from mlplatform.masking import mask
from mlplatform.model_trust import check_model_folder

F = TypeVar("F", bound=Callable)
PAGE_SIZE = 100
MODEL_ARTIFACT_PATH = "model"


class TrackingServerUnreachable(ConnectionError):
    """MLFLOW_TRACKING_URI names a server that does not answer."""


class ArtifactStoreFailed(RuntimeError):
    """The tracking server could not store a run's artifacts (its S3 store is down, or refuses)."""


def _artifact_upload(method: F) -> F:
    """A ``TrackedRun`` method that uploads artifacts: a failure through a tracking server names its artifact store."""

    @functools.wraps(method)
    def upload(run: TrackedRun, *args, **kwargs):
        try:
            return method(run, *args, **kwargs)
        except MlflowException as exc:
            if not run.client.tracking_uri.startswith(("http://", "https://")):
                raise
            raise ArtifactStoreFailed(
                f"the MLflow tracking server at {mask(run.client.tracking_uri)} could not store artifacts of run "
                f"{run.run_id} in its artifact store (S3: S3_ARTIFACT_BUCKET at MLFLOW_S3_ENDPOINT_URL, set on the "
                f"tracking server); is the S3 server up? MLflow said: {mask(str(exc))[:400]}"
            ) from None

    return upload  # type: ignore[return-value]


@dataclass(frozen=True)
class AliasNames:
    """The aliases the lifecycle moves: production (served, batch inference), candidate, optional shadow."""

    production: str
    candidate: str
    shadow: str = ""


class TrackedRun:
    """One MLflow run, written through the client (no active-run state)."""

    def __init__(self, client: MlflowClient, run_id: str, artifact_uri: str) -> None:
        self.client, self.run_id, self.artifact_uri = client, run_id, artifact_uri

    def log_params(self, params: dict[str, Any]) -> None:
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    @_artifact_upload
    def log_dict(self, data: dict, path: str) -> None:
        self.client.log_dict(self.run_id, data, path)

    @_artifact_upload
    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    @_artifact_upload
    def log_png(self, png: bytes, path: str) -> None:
        """A picture already rendered (the UIs show the same bytes), logged as the artifact ``path``."""
        where = PurePosixPath(path)
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / where.name
            local.write_bytes(png)
            self.client.log_artifact(self.run_id, str(local), str(where.parent) if where.parent.parts else None)

    @_artifact_upload
    def log_table(self, frame, path: str) -> None:
        self.client.log_table(self.run_id, frame, path)

    @_artifact_upload
    def log_sklearn_model(self, pipeline, **save_options) -> str:
        """Save the scikit-learn model (MLflow format) and log it under ``model/``; returns its source URI."""
        import mlflow.sklearn

        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / MODEL_ARTIFACT_PATH
            mlflow.sklearn.save_model(pipeline, str(local), **save_options)
            self.client.log_artifacts(self.run_id, str(local), MODEL_ARTIFACT_PATH)
        return f"{self.artifact_uri}/{MODEL_ARTIFACT_PATH}"


class ModelRegistry:
    """Registry and tracking of one MLflow store, for the platform's registered models ``<prefix>_<dataset>``."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_name: str,
        model_name_prefix: str,
        aliases: AliasNames,
        artifact_root: str = "",
    ) -> None:
        self.client, self.experiment_name, self.model_name_prefix = client, experiment_name, model_name_prefix
        self.aliases, self.artifact_root = aliases, artifact_root

    @property
    def tracking_uri(self) -> str:
        return self.client.tracking_uri

    @property
    def is_server(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """Fail fast, naming the server, instead of MLflow's minutes of retries against a server that is down."""
        if not self.is_server:
            return
        try:
            with urllib.request.urlopen(_health_request(self.tracking_uri), timeout=timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingServerUnreachable(
                f"MLflow tracking server at {mask(self.tracking_uri)} (MLFLOW_TRACKING_URI) is unreachable: {reason}"
            ) from None

    def model_name(self, dataset: str) -> str:
        return f"{self.model_name_prefix}_{dataset}"

    # Registry

    def alias_version(self, model_name: str, alias: str) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(model_name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def require_alias(self, model_name: str, alias: str) -> ModelVersion:
        version = self.alias_version(model_name, alias)
        if version is None:
            raise LookupError(
                f"registered model {model_name!r} has no version with alias {alias!r} in {mask(self.tracking_uri)}"
            )
        return version

    def version(self, model_name: str, version: int) -> ModelVersion:
        return self.client.get_model_version(model_name, str(version))

    def register(self, source: str, run_id: str, model_name: str, tags: dict[str, str]) -> ModelVersion:
        try:
            self.client.create_registered_model(model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return self.client.create_model_version(model_name, source, run_id=run_id, tags=tags)

    def set_alias(self, model_name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(model_name, alias, str(version))

    def delete_alias(self, model_name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(model_name, alias)

    def registered_models(self) -> Iterator[RegisteredModel]:
        """Every registered model, all pages."""
        return _all_pages(self.client.search_registered_models)

    def model_versions(self) -> Iterator[ModelVersion]:
        """Every version of every registered model, all pages."""
        return _all_pages(self.client.search_model_versions)

    def load_model(self, version: ModelVersion):
        """The scikit-learn pipeline of a registered version, once its files pass the platform's trust check."""
        import mlflow.sklearn

        with tempfile.TemporaryDirectory() as folder:
            local = self._download(version, folder)
            with pickle_allowed():
                return mlflow.sklearn.load_model(local)

    def _download(self, version: ModelVersion, folder: str) -> str:
        """The version's model files in ``folder``, checked by ``check_model_folder``; returns their path."""
        from mlflow.artifacts import download_artifacts

        uri = self.client.get_model_version_download_uri(version.name, version.version)
        local = download_artifacts(artifact_uri=uri, dst_path=folder, tracking_uri=self.tracking_uri)
        check_model_folder(Path(local), f"{version.name} v{version.version}")
        return local

    # Tracking

    def experiment_id(self) -> str:
        """The experiment's id, created on first use (a local store keeps its artifacts under ``artifact_root``)."""
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = Path(self.artifact_root).resolve().as_uri() if self.artifact_root and not self.is_server else None
        try:
            return self.client.create_experiment(self.experiment_name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.experiment_id()  # created by a concurrent run in the meantime

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str], parent: TrackedRun | None = None) -> Iterator[TrackedRun]:
        """A run that always ends: FINISHED when the block completes, FAILED when it raises."""
        if parent is not None:
            tags = {**tags, MLFLOW_PARENT_RUN_ID: parent.run_id}
        experiment = self.client.get_run(parent.run_id).info.experiment_id if parent else self.experiment_id()
        run = self.client.create_run(experiment, tags=tags, run_name=run_name)
        tracked = TrackedRun(self.client, run.info.run_id, run.info.artifact_uri)
        try:
            yield tracked
        except BaseException:
            self._end(tracked.run_id, "FAILED")
            raise
        self._end(tracked.run_id, "FINISHED")

    def _end(self, run_id: str, status: str) -> None:
        """End the run; the links MLflow prints for it carry the tracking URI, so they are printed masked."""
        with contextlib.redirect_stdout(io.StringIO()) as links:
            self.client.set_terminated(run_id, status)
        sys.stdout.write(mask(links.getvalue()))

    def load_text(self, run_id: str, path: str) -> str:
        with tempfile.TemporaryDirectory() as folder:
            return Path(self.client.download_artifacts(run_id, path, folder)).read_text()


def _health_request(tracking_uri: str) -> urllib.request.Request:
    """``/health`` of the server; a ``user:password@`` in the URL (MLflow's basic auth) goes in a header, where urllib
    (unlike MLflow's client) expects it."""
    parts = urllib.parse.urlsplit(tracking_uri)
    netloc = parts.netloc.rpartition("@")[2]
    url = urllib.parse.urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/health", "", ""))
    request = urllib.request.Request(url)
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        request.add_header("Authorization", f"Basic {base64.b64encode(f'{user}:{password}'.encode()).decode()}")
    return request


def _all_pages(search) -> Iterator:
    token = None
    while True:
        page = search(max_results=PAGE_SIZE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


@contextmanager
def pickle_allowed() -> Iterator[None]:
    """MLflow refuses to deserialize scikit-learn models unless this is allowed; the platform loads only models
    from its own registry, and allows it for the duration of that load alone."""
    name = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
