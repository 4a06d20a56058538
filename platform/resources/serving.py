"""Serving backends: local processes (the embedded default) or Docker containers (the compose stack)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from mlplatform.serving.backend import ServingBackend


class ServingResource(ConfigurableResource):
    home: str = Field(description="MLPLATFORM_HOME: where the local backend records its servers.")
    backend: str = Field(default="local", description="MLPLATFORM_SERVING_BACKEND: 'local' or 'docker'.")
    aliases: str = Field(default="Production", description="MLFLOW_SERVE_ALIASES, comma-separated, exact.")
    docker_image: str = Field(default="", description="MLPLATFORM_IMAGE: image of the serving containers.")
    docker_network: str = Field(default="", description="MLFLOW_SERVE_NETWORK: network of the serving containers.")

    @property
    def serve_aliases(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.aliases.split(",") if a.strip())

    def open(self) -> ServingBackend:
        if self.backend == "local":
            from mlplatform.serving.local_backend import LocalProcessBackend

            return LocalProcessBackend(self.home)
        if self.backend == "docker":
            from mlplatform.serving.docker_backend import DockerBackend

            return DockerBackend(self.home, self.docker_image, self.docker_network)
        raise ValueError(f"MLPLATFORM_SERVING_BACKEND must be 'local' or 'docker', got {self.backend!r}")
