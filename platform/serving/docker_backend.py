"""Serving as Docker containers on the compose network (the production default in deploy/).

Each version is a container ``<server name>-v<version>`` running the platform's scoring server
(``mlplatform.serving.scoring_server``) with that one version loaded at start; the model@alias's stable
address is a gateway container named ``<server name>`` (its DNS name on the network). No host ports are published;
Prometheus finds both through the labels. The containers get only ``MLFLOW_TRACKING_URI`` (artifacts are proxied
by the tracking server), so no credential appears in their labels or command lines.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from dagster import DagsterRun
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext
from docker import DockerClient

from mlplatform.serving.backend import GatewayLimits, gateway_command
from mlplatform.serving.scoring_client import wait_ready
from mlplatform.serving.scoring_launch import model_path, scoring_command, scoring_environment
from mlplatform.serving.state import ServerRecord, ServingState, Upstream

SCORING_PORT = 8080
GATEWAY_PORT = 8000
STATE_VOLUME = "/var/lib/mlplatform/serving"  # shared by the run containers and the gateways
RESOURCES = {"mem_limit": "1g", "nano_cpus": 1_000_000_000, "pids_limit": 256}
# CPU weight of a scoring container when the cores are contended (Docker's default is 1024): the versions of aliases
# other than production (challengers: shadow and canary traffic) yield to production's, as the local backend's
# second scoring process does with its nice level.
PRODUCTION_CPU_SHARES, OTHERS_CPU_SHARES = 1024, 128


def labels(model: str, alias: str, version: int | None, port: int, role: str) -> dict[str, str]:
    return {
        "mlflow_serve": "true",
        "mlflow_model": model,
        "mlflow_alias": alias,
        "mlflow_version": "" if version is None else str(version),
        "mlflow_port": str(port),
        "mlplatform_role": role,  # "scoring" or "gateway"
    }


def scoring_spec(
    name: str, model: str, alias: str, version: int, image: str, network: str, tracking_uri: str, production: bool
) -> dict:
    """Keyword arguments for ``docker.containers.run`` of one version's scoring server; ``production``: served for
    the production alias (full CPU weight), or for another alias (a low one)."""
    return {
        "image": image,
        "name": f"{name}-v{version}",
        "command": scoring_command(("python", "-m"), "0.0.0.0", SCORING_PORT, (f"{model}/{version}",)),
        "environment": scoring_environment(tracking_uri),
        "labels": labels(model, alias, version, SCORING_PORT, "scoring"),
        "network": network,
        "restart_policy": {"Name": "unless-stopped"},
        "detach": True,
        **RESOURCES,
        "cpu_shares": PRODUCTION_CPU_SHARES if production else OTHERS_CPU_SHARES,
    }


def gateway_spec(
    name: str, model: str, alias: str, image: str, network: str, volume: str, own_folder: str, limits: GatewayLimits
) -> dict:
    """Keyword arguments for ``docker.containers.run`` of a model@alias's gateway. It reads the serving state
    read-only, except its own folder (``own_folder``: where that folder of the volume lies on the Docker host), which
    it may write: its shadow pair records (``shadow-pairs.jsonl``) go there, for the platform to ingest."""
    return {
        "image": image,
        "name": name,
        "command": gateway_command(
            ("python", "-m"),
            model,
            alias,
            "0.0.0.0",
            GATEWAY_PORT,
            Path(f"{STATE_VOLUME}/{name}/upstream.json"),
            limits,
        ),
        "labels": labels(model, alias, None, GATEWAY_PORT, "gateway"),
        "network": network,
        "volumes": {
            volume: {"bind": STATE_VOLUME, "mode": "ro"},
            own_folder: {"bind": f"{STATE_VOLUME}/{name}", "mode": "rw"},
        },
        "restart_policy": {"Name": "unless-stopped"},
        "detach": True,
        **RESOURCES,
    }


class DockerBackend:
    """Talks to the Docker engine (the socket of the Dagster run containers) through the docker SDK."""

    def __init__(
        self,
        home: str,
        tracking_uri: str,
        limits: GatewayLimits,
        image: str,
        network: str,
        production_alias: str,
        volume: str = "mlplatform-serving",
    ) -> None:
        if not image or not network:
            raise ValueError("the Docker serving backend needs MLPLATFORM_IMAGE and MLFLOW_SERVE_NETWORK")
        self._client: DockerClient | None = None
        self.tracking_uri, self.limits = tracking_uri, limits
        self.image, self.network, self.volume, self.production_alias = image, network, volume, production_alias
        self.state = ServingState(Path(STATE_VOLUME) if Path(STATE_VOLUME).exists() else Path(home) / "serving")

    @property
    def client(self) -> DockerClient:
        """The engine, reached on first use: reading the serving state (the exporter) needs no Docker socket."""
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def start_upstream(self, name: str, model: str, alias: str, version: int, model_uri: str) -> Upstream:
        production = alias == self.production_alias
        spec = scoring_spec(name, model, alias, version, self.image, self.network, self.tracking_uri, production)
        self._remove_if_present(spec["name"])
        container = self.client.containers.run(**spec)
        address = f"http://{spec['name']}:{SCORING_PORT}{model_path(model, version)}"
        return Upstream(version=version, address=address, handle=container.name)

    def wait_upstream(self, upstream: Upstream, what: str) -> None:
        wait_ready(
            upstream.address,
            lambda: self._status(upstream.handle) not in ("exited", "dead", "removed"),
            lambda: self._logs(upstream.handle),
            what,
        )

    def stop_upstream(self, upstream: Upstream) -> None:
        """SIGTERM first: the scoring server answers the requests it is still running (aiohttp's graceful
        shutdown) for at most the gateway's timeout, as the local backend's unload drains them; then it goes."""
        self._remove_if_present(upstream.handle, grace_s=self.limits.timeout_s)

    def start_gateway(self, name: str, model: str, alias: str, address: str | None) -> tuple[str, str]:
        """The gateway's folder is made first (a Docker engine before API 1.45 mounts no volume subpath: the folder
        is bound by its path on the host, which must exist, as its mount point inside the read-only volume must)."""
        self._remove_if_present(name)
        (self.state.folder / name).mkdir(parents=True, exist_ok=True)
        own_folder = f"{self.client.volumes.get(self.volume).attrs['Mountpoint']}/{name}"
        container = self.client.containers.run(
            **gateway_spec(name, model, alias, self.image, self.network, self.volume, own_folder, self.limits)
        )
        return f"http://{name}:{GATEWAY_PORT}", container.name

    def gateway_alive(self, record: ServerRecord) -> bool:
        import docker.errors

        try:
            return self._status(record.gateway) == "running"
        except docker.errors.DockerException:
            # No Docker socket in this process: the alias sensor runs in the code location's container, which has
            # none on purpose. The HTTP probes of the health check (gateway version, /ping) decide alone.
            return True

    def stop_gateway(self, record: ServerRecord) -> None:
        self._remove_if_present(record.gateway)

    def _status(self, name: str) -> str:
        import docker.errors

        try:
            return self.client.containers.get(name).status
        except docker.errors.NotFound:
            return "removed"

    def _logs(self, name: str) -> str:
        import docker.errors

        try:
            return self.client.containers.get(name).logs(tail=30).decode(errors="replace")
        except docker.errors.NotFound:
            return "(container removed)"

    def _remove_if_present(self, name: str, grace_s: float = 0) -> None:
        import docker.errors

        try:
            container = self.client.containers.get(name)
            if grace_s:
                container.stop(timeout=math.ceil(grace_s))
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


SOCKET = "/var/run/docker.sock"
SERVING_JOB = "serving_job"


def serving_run_kwargs(socket_gid: int, state_volume: str = "mlplatform-serving") -> dict:
    """What a serving run's container gets on top of every run's: the Docker socket (it starts and stops the serving
    containers), its group (the image runs as a non-root user), and the serving state volume read-write (it writes
    servers.json, the gateways' upstream files, Prometheus' targets.json), in place of every run's read-only mount of
    it (deploy/dagster/dagster.yaml: monitoring runs read the gateways' shadow pair records there)."""
    return {
        "volumes": {SOCKET: {"bind": SOCKET, "mode": "rw"}, state_volume: {"bind": STATE_VOLUME, "mode": "rw"}},
        "group_add": [str(socket_gid)],
    }


class ServingAwareDockerRunLauncher(DockerRunLauncher):
    """Dagster's DockerRunLauncher, one container per run, where only ``serving_job`` runs get the Docker socket.

    The socket is root on the host: a training or inference run has no use for it, so it never sees it. The
    serving job is the one that starts serving containers (the alias sensor's runs), so its containers get it, and
    the serving state volume read-write: the configured volumes are keyed by source, so its mount replaces the
    read-only one every run has. Configured in deploy/dagster/dagster.yaml like DockerRunLauncher (same config schema).
    """

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        if dagster_run.job_name != SERVING_JOB:
            return context
        extra = serving_run_kwargs(os.stat(SOCKET).st_gid)
        merged_volumes = {**_volumes(context.container_kwargs.get("volumes")), **extra["volumes"]}
        return context.merge(
            DockerContainerContext(container_kwargs={"volumes": merged_volumes, "group_add": extra["group_add"]})
        )


def _volumes(volumes: object) -> dict:
    """Docker SDK volumes as a dict, whether given as a dict or as ``["src:dst[:mode]", ...]``."""
    if not volumes:
        return {}
    if isinstance(volumes, dict):
        return dict(volumes)
    result = {}
    for item in volumes if isinstance(volumes, list | tuple) else ():
        source, bind, *mode = str(item).split(":")
        result[source] = {"bind": bind, "mode": mode[0] if mode else "rw"}
    return result
