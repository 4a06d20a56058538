"""Serving as local processes: every model version in the serving home's one scoring process (``scoring_process``),
behind one gateway per model@alias, all on loopback ports, recorded in ``<home>/serving`` so that a restarted
Dagster finds them again."""

from __future__ import annotations

import sys
from pathlib import Path

from mlplatform.serving.backend import GatewayLimits, gateway_command
from mlplatform.serving.processes import base_environment, free_port, handle_of, running, spawn, stop
from mlplatform.serving.scoring_client import log_tail, wait_ready
from mlplatform.serving.scoring_process import ScoringProcess
from mlplatform.serving.state import ServerRecord, ServingState, Upstream


class LocalProcessBackend:
    def __init__(self, home: str | Path, tracking_uri: str, limits: GatewayLimits) -> None:
        self.state = ServingState(Path(home) / "serving")
        self.scoring = ScoringProcess(self.state.folder / "scoring", tracking_uri)
        self.limits = limits

    def start_upstream(self, name: str, model: str, alias: str, version: int, model_uri: str) -> Upstream:
        return self.scoring.load(model, version)

    def wait_upstream(self, upstream: Upstream, what: str) -> None:
        wait_ready(upstream.address, lambda: running(upstream.handle), lambda: log_tail(Path(upstream.log)), what)

    def stop_upstream(self, upstream: Upstream) -> None:
        """Unload the version, unless another model@alias routes to it (the same version under two aliases)."""
        served = {r.upstream.address for r in self.state.read().values() if r.upstream is not None}
        self.scoring.unload(upstream, still_served=upstream.address in served)

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
