"""Serving as a Dagster resource: which aliases are served, and the backend that runs the servers.

One subclass per backend; ``build_resources`` picks the one the settings name (``MLPLATFORM_SERVING_BACKEND``).
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from mlplatform.serving.backend import ServingBackend
from mlplatform.settings import parse_aliases


class ServingResource(ConfigurableResource):
    home: str = Field(description="MLPLATFORM_HOME: where the servers of this home are recorded.")
    aliases: str = Field(default="Production", description="MLFLOW_SERVE_ALIASES, comma-separated, exact.")
    tracking_uri: str = Field(description="MLFLOW_TRACKING_URI, the only store the model servers are given.")

    @property
    def serve_aliases(self) -> tuple[str, ...]:
        return parse_aliases(self.aliases)

    def open(self) -> ServingBackend:
        raise NotImplementedError


class LocalServing(ServingResource):
    """Model servers and gateways as local processes on loopback (the embedded default)."""

    def open(self) -> ServingBackend:
        from mlplatform.serving.local_backend import LocalProcessBackend

        return LocalProcessBackend(self.home, self.tracking_uri)


class DockerServing(ServingResource):
    """Model servers and gateways as containers on the stack's network (the compose stack)."""

    image: str = Field(description="MLPLATFORM_IMAGE: image of the serving containers.")
    network: str = Field(description="MLFLOW_SERVE_NETWORK: network of the serving containers.")

    def open(self) -> ServingBackend:
        from mlplatform.serving.docker_backend import DockerBackend

        return DockerBackend(self.home, self.tracking_uri, self.image, self.network)
