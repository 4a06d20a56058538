"""Serving as local processes: ``mlflow models serve`` per version behind one gateway per model@alias, all on
loopback ports, recorded in ``<home>/serving`` so that a restarted Dagster finds them again."""

from __future__ import annotations

import sys
from pathlib import Path

from mlplatform.serving.local_process import alive, free_port, serve_command, spawn, stop_process, wait_ready
from mlplatform.serving.state import ServerRecord, ServingState, Upstream


class LocalProcessBackend:
    def __init__(self, home: Path) -> None:
        self.state = ServingState(Path(home) / "serving")

    def start_upstream(self, name: str, model: str, alias: str, version: int, model_uri: str) -> Upstream:
        port = free_port()
        log = self.state.folder / name / f"v{version}-{port}.log"
        pid = spawn(serve_command(model_uri, port), log)
        return Upstream(version=version, address=f"http://127.0.0.1:{port}", handle=str(pid), log=str(log))

    def wait_upstream(self, upstream: Upstream, what: str) -> None:
        wait_ready(upstream.address, int(upstream.handle), Path(upstream.log), what)

    def stop_upstream(self, upstream: Upstream) -> None:
        stop_process(int(upstream.handle))

    def start_gateway(self, name: str, model: str, alias: str, address: str | None) -> tuple[str, str]:
        port = int(address.rsplit(":", 1)[1]) if address else free_port()
        command = [sys.executable, "-m", "mlplatform.serving.gateway", "--model", model, "--alias", alias,
                   "--port", str(port), "--upstream-file", str(self.state.upstream_file(name))]
        pid = spawn(command, self.state.folder / name / "gateway.log")
        return f"http://127.0.0.1:{port}", str(pid)

    def gateway_alive(self, record: ServerRecord) -> bool:
        return alive(int(record.gateway))

    def stop_gateway(self, record: ServerRecord) -> None:
        stop_process(int(record.gateway))
