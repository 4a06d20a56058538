"""MLflow: tracking server and model registry (aliases only, never stages), as a Dagster resource.

The resource holds configuration only; ``registry()`` gives domain code its ``ModelRegistry`` over an
``MlflowClient`` for exactly this store. No network at init: a sensor must be able to report an unreachable
server as a skipped tick.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from mlflow.tracking import MlflowClient
from pydantic import Field

from mlplatform.model_registry import AliasNames, ModelRegistry


class MlflowTracking(ConfigurableResource):
    tracking_uri: str = Field(description="MLFLOW_TRACKING_URI: a tracking server URL or a local store.")
    experiment_name: str = Field(description="MLFLOW_EXPERIMENT_NAME")
    model_name_prefix: str = Field(description="MLFLOW_MODEL_NAME: registered models are <prefix>_<dataset>.")
    production_alias: str = Field(description="MLFLOW_MODEL_ALIAS, the alias batch inference and serving use.")
    candidate_alias: str = Field(description="MLFLOW_CANDIDATE_ALIAS, given to every newly trained best model.")
    shadow_alias: str = Field(default="", description="MLFLOW_SHADOW_ALIAS: predicts beside production, role 'shadow'.")
    artifact_root: str = Field(default="", description="MLPLATFORM_ARTIFACT_ROOT: artifacts of a local store.")

    def registry(self, check: bool = True) -> ModelRegistry:
        """The registry of this store; with ``check``, a tracking server that does not answer fails fast."""
        registry = ModelRegistry(
            MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri),
            self.experiment_name,
            self.model_name_prefix,
            AliasNames(self.production_alias, self.candidate_alias, self.shadow_alias),
            self.artifact_root,
        )
        if check:
            registry.check_reachable()
        return registry
