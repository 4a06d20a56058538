"""Serving as local processes: ``mlflow models serve`` per version behind one gateway per model@alias, all on
loopback ports, recorded in ``<home>/serving`` so that a restarted Dagster finds them again."""

from __future__ import annotations

import sys
from pathlib import Path

from mlplatform.serving.backend import GatewayLimits, gateway_command
from mlplatform.serving.processes import base_environment, free_port, handle_of, running, spawn, stop
from mlplatform.serving.scoring_client import log_tail, wait_ready
from mlplatform.serving.scoring_server import scoring_command, scoring_environment
from mlplatform.serving.state import ServerRecord, ServingState, Upstream


class LocalProcessBackend:
    def __init__(self, home: str | Path, tracking_uri: str, limits: GatewayLimits) -> None:
        self.state = ServingState(Path(home) / "serving")
        self.tracking_uri, self.limits = tracking_uri, limits

    def start_upstream(self, name: str, model: str, alias: str, version: int, model_uri: str) -> Upstream:
        port = free_port()
        log = self.state.folder / name / f"v{version}-{port}.log"
        command = scoring_command(model_uri, "127.0.0.1", port, (sys.executable, "-m", "mlflow"))
        process = spawn(command, log, {**base_environment(), **scoring_environment(self.tracking_uri)})
        return Upstream(version=version, address=f"http://127.0.0.1:{port}", handle=handle_of(process), log=str(log))

    def wait_upstream(self, upstream: Upstream, what: str) -> None:
        wait_ready(upstream.address, lambda: running(upstream.handle), lambda: log_tail(Path(upstream.log)), what)

    def stop_upstream(self, upstream: Upstream) -> None:
        stop(upstream.handle)
        self.state.prune_logs(Path(upstream.log).parent.name)

    def start_gateway(self, name: str, model: str, alias: str, address: str | None) -> tuple[str, str]:
        port = int(address.rsplit(":", 1)[1]) if address else free_port()
        command = gateway_command(
            (sys.executable, "-m"), model, alias, "127.0.0.1", port, self.state.upstream_file(name), self.limits
        )
        process = spawn(command, self.state.folder / name / "gateway.log", base_environment())
        return f"http://127.0.0.1:{port}", handle_of(process)

    def gateway_alive(self, record: ServerRecord) -> bool:
        return running(record.gateway)

    def stop_gateway(self, record: ServerRecord) -> None:
        stop(record.gateway)
