"""The small interface every serving backend implements (local processes, Docker containers)."""

from __future__ import annotations

from typing import Protocol

from mlplatform.serving.state import ServerRecord, ServingState, Upstream


class ServingBackend(Protocol):
    state: ServingState

    def start_upstream(self, name: str, model: str, alias: str, version: int, model_uri: str) -> Upstream:
        """Start a scoring server for one model version (not yet taking traffic)."""

    def wait_upstream(self, upstream: Upstream, what: str) -> None:
        """Return when it answers /ping; raise ServerError with its log tail if it never does."""

    def stop_upstream(self, upstream: Upstream) -> None: ...

    def start_gateway(self, name: str, model: str, alias: str, address: str | None) -> tuple[str, str]:
        """Start the stable-address gateway (on ``address`` when given); returns (address, handle)."""

    def gateway_alive(self, record: ServerRecord) -> bool: ...

    def stop_gateway(self, record: ServerRecord) -> None: ...
