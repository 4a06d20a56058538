"""Serving as local processes: every production version in the serving home's scoring process (``scoring_process``),
the versions of other aliases (challengers: shadow and canary traffic) in a second one at a lower CPU priority, so
that their work never takes the cores from production's answers (a version production serves is not loaded twice:
its copy answers for the other alias too); one gateway per model@alias, all on loopback ports, recorded in
``<home>/serving`` so that a restarted Dagster finds them again."""

from __future__ import annotations

import sys
from pathlib import Path

from mlplatform.serving.backend import GatewayLimits, gateway_command
from mlplatform.serving.processes import base_environment, free_port, handle_of, running, spawn, stop
from mlplatform.serving.scoring_client import log_tail, wait_ready
from mlplatform.serving.scoring_process import ScoringProcess
from mlplatform.serving.state import ServerRecord, ServingState, Upstream

OTHERS_NICE = 10  # production's process is at the platform's own level (0); 10 leaves it most of a contended core


class LocalProcessBackend:
    def __init__(self, home: str | Path, tracking_uri: str, limits: GatewayLimits, production_alias: str) -> None:
        self.state = ServingState(Path(home) / "serving")
        self.scoring = ScoringProcess(self.state.folder / "scoring", tracking_uri)
        self.others = ScoringProcess(self.state.folder / "scoring-others", tracking_uri, nice=OTHERS_NICE)
        self.limits, self.production_alias = limits, production_alias

    def start_upstream(self, name: str, model: str, alias: str, version: int, model_uri: str) -> Upstream:
        if alias == self.production_alias:
            return self.scoring.load(model, version)
        # Another alias on the version production serves (a challenger right after its promotion): that copy answers,
        # rather than a second one in the second process (which would be started for it alone).
        return self._served_for_production(model, version) or self.others.load(model, version)

    def _served_for_production(self, model: str, version: int) -> Upstream | None:
        for record in self.state.read().values():
            upstream = record.upstream
            if (
                upstream is not None
                and (record.model, record.alias, upstream.version) == (model, self.production_alias, version)
                and self.scoring.started(upstream)
                and running(upstream.handle)
            ):
                return upstream
        return None

    def wait_upstream(self, upstream: Upstream, what: str) -> None:
        wait_ready(upstream.address, lambda: running(upstream.handle), lambda: log_tail(Path(upstream.log)), what)

    def stop_upstream(self, upstream: Upstream) -> None:
        """Unload the version, unless another model@alias routes to it (the same version under two aliases)."""
        served = {r.upstream.address for r in self.state.read().values() if r.upstream is not None}
        process = self.others if self.others.started(upstream) else self.scoring
        process.unload(upstream, still_served=upstream.address in served)

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
