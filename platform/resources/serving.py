"""Serving as a Dagster resource: which aliases are served, and the backend that runs the servers.

One subclass per backend; ``build_resources`` picks the one the settings name (``MLPLATFORM_SERVING_BACKEND``).
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from mlplatform.serving.backend import GatewayLimits, ServingBackend
from mlplatform.settings import parse_aliases


class ServingResource(ConfigurableResource):
    home: str = Field(description="MLPLATFORM_HOME: where the servers of this home are recorded.")
    aliases: str = Field(default="Production", description="MLFLOW_SERVE_ALIASES, comma-separated, exact.")
    production_alias: str = Field(default="Production", description="MLFLOW_MODEL_ALIAS, production's alias.")
    tracking_uri: str = Field(description="MLFLOW_TRACKING_URI, the only store the model servers are given.")
    models: str = Field(description="MLPLATFORM_SERVE_MODELS: glob patterns of the registered models served.")
    max_body_mb: int = Field(default=32, description="MLPLATFORM_SERVE_MAX_BODY_MB")
    max_concurrency: int = Field(default=64, description="MLPLATFORM_SERVE_MAX_CONCURRENCY")
    timeout_s: float = Field(default=30.0, description="MLPLATFORM_SERVE_TIMEOUT_S")
    extra_columns: str = Field(default="reject", description="MLPLATFORM_SERVE_EXTRA_COLUMNS: 'reject' or 'drop'")

    @property
    def serve_aliases(self) -> tuple[str, ...]:
        return parse_aliases(self.aliases)

    @property
    def model_patterns(self) -> tuple[str, ...]:
        return parse_aliases(self.models)

    @property
    def limits(self) -> GatewayLimits:
        return GatewayLimits(self.max_body_mb, self.max_concurrency, self.timeout_s, self.extra_columns != "drop")

    def open(self) -> ServingBackend:
        raise NotImplementedError

    def backend_for_moves(self) -> ServingBackend | None:
        """The backend a process that moves an alias may switch the server with at once
        (``mlplatform.serving.rollout.move_and_serve``), or None where only the alias sensor's serving runs run
        servers: on Docker only they get the socket (it is root on the host), not a training run's gate or a CLI."""
        return None


class LocalServing(ServingResource):
    """Model servers and gateways as local processes on loopback (the embedded default)."""

    def open(self) -> ServingBackend:
        from mlplatform.serving.local_backend import LocalProcessBackend

        return LocalProcessBackend(self.home, self.tracking_uri, self.limits, self.production_alias)

    def backend_for_moves(self) -> ServingBackend:
        """Every platform process of an embedded home runs on its machine and may start its local processes."""
        return self.open()


class DockerServing(ServingResource):
    """Model servers and gateways as containers on the stack's network (the compose stack)."""

    image: str = Field(description="MLPLATFORM_IMAGE: image of the serving containers.")
    network: str = Field(description="MLFLOW_SERVE_NETWORK: network of the serving containers.")

    def open(self) -> ServingBackend:
        from mlplatform.serving.docker_backend import DockerBackend

        return DockerBackend(self.home, self.tracking_uri, self.limits, self.image, self.network, self.production_alias)
