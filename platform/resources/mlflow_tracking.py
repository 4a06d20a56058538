"""MLflow: tracking server and model registry (aliases only, never stages)."""

from __future__ import annotations

import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import mlflow
from dagster import ConfigurableResource, InitResourceContext
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import Field, PrivateAttr


class TrackingServerUnreachable(ConnectionError):
    """MLFLOW_TRACKING_URI names a server that does not answer."""


class MlflowTracking(ConfigurableResource):
    tracking_uri: str = Field(description="MLFLOW_TRACKING_URI: a tracking server URL or a local store.")
    experiment_name: str = Field(description="MLFLOW_EXPERIMENT_NAME")
    model_name_prefix: str = Field(description="MLFLOW_MODEL_NAME: registered models are <prefix>_<dataset>.")
    production_alias: str = Field(description="MLFLOW_MODEL_ALIAS, the alias batch inference and serving use.")
    candidate_alias: str = Field(description="MLFLOW_CANDIDATE_ALIAS, given to every newly trained best model.")
    shadow_alias: str = Field(default="", description="MLFLOW_SHADOW_ALIAS: predicts beside production, role 'shadow'.")
    artifact_root: str = Field(default="", description="Artifact folder for a local store (embedded default).")

    _checked: bool = PrivateAttr(default=False)

    @classmethod
    def from_settings(cls, settings) -> MlflowTracking:
        """The resource as the definitions configure it, for code that runs outside Dagster (CLI, tests)."""
        return cls(
            tracking_uri=settings.mlflow_tracking_uri, experiment_name=settings.experiment_name,
            model_name_prefix=settings.model_name_prefix, production_alias=settings.production_alias,
            candidate_alias=settings.candidate_alias, shadow_alias=settings.shadow_alias,
            artifact_root=settings.mlflow_artifact_root,
        )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # No network here: a sensor must be able to report an unreachable server as a skipped tick.
        mlflow.set_tracking_uri(self.tracking_uri)

    def activate(self) -> None:
        """Point this process's MLflow at the configured store and experiment (creating it if missing)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        client = self.client()
        if client.get_experiment_by_name(self.experiment_name) is None:
            # A tracking server decides where artifacts go (its --artifacts-destination); a local store uses ours.
            location = Path(self.artifact_root).resolve().as_uri() if self.artifact_root and not self.is_server else None
            try:
                client.create_experiment(self.experiment_name, artifact_location=location)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        mlflow.set_experiment(self.experiment_name)

    @property
    def is_server(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """Fail fast, naming the server, instead of MLflow's minutes of retries against a server that is down."""
        if not self.is_server:
            return
        try:
            with urllib.request.urlopen(f"{self.tracking_uri.rstrip('/')}/health", timeout=timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingServerUnreachable(
                f"MLflow tracking server at {self.tracking_uri} (MLFLOW_TRACKING_URI) is unreachable: {reason}"
            ) from None

    def client(self) -> MlflowClient:
        if not self._checked:
            self.check_reachable()
            self._checked = True
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def model_name(self, dataset: str) -> str:
        return f"{self.model_name_prefix}_{dataset}"

    def alias_version(self, model_name: str, alias: str) -> ModelVersion | None:
        try:
            return self.client().get_model_version_by_alias(model_name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def require_alias(self, model_name: str, alias: str) -> ModelVersion:
        version = self.alias_version(model_name, alias)
        if version is None:
            raise LookupError(f"registered model {model_name!r} has no version with alias {alias!r} in {self.tracking_uri}")
        return version

    def register(self, model_uri: str, model_name: str, tags: dict[str, str]) -> ModelVersion:
        return mlflow.register_model(model_uri, model_name, tags=tags)

    def set_alias(self, model_name: str, alias: str, version: int | str) -> None:
        self.client().set_registered_model_alias(model_name, alias, str(version))

    def load_model(self, version: ModelVersion):
        """The scikit-learn pipeline of a registered version."""
        import mlflow.sklearn

        return mlflow.sklearn.load_model(f"models:/{version.name}/{version.version}")

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str], nested: bool = False):
        if not nested:
            self.activate()
        with mlflow.start_run(run_name=run_name, tags=tags, nested=nested) as run:
            yield run

    def end_run(self, status: str = "FINISHED") -> None:
        """Called by dagster-mlflow's ``end_mlflow_on_run_finished`` hook: no MLflow run stays RUNNING."""
        if mlflow.active_run() is not None:
            mlflow.end_run(status=status)
