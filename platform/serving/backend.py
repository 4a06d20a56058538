"""The small interface every serving backend implements (local processes, Docker containers)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlplatform.serving.state import ServerRecord, ServingState, Upstream


@dataclass(frozen=True)
class GatewayLimits:
    """What a gateway accepts: body size, requests in flight, time to answer, and columns the model does not take."""

    max_body_mb: int = 32
    max_concurrency: int = 64
    timeout_s: float = 30.0
    strict_columns: bool = True

    def arguments(self) -> list[str]:
        return [
            "--max-body-mb", str(self.max_body_mb), "--max-concurrency", str(self.max_concurrency),
            "--timeout-s", str(self.timeout_s), "--extra-columns", "reject" if self.strict_columns else "drop",
        ]  # fmt: skip

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-body-mb", type=int, default=GatewayLimits.max_body_mb)
        parser.add_argument("--max-concurrency", type=int, default=GatewayLimits.max_concurrency)
        parser.add_argument("--timeout-s", type=float, default=GatewayLimits.timeout_s)
        parser.add_argument("--extra-columns", choices=["reject", "drop"], default="reject")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> GatewayLimits:
        return cls(args.max_body_mb, args.max_concurrency, args.timeout_s, args.extra_columns == "reject")


def gateway_command(
    python: tuple[str, ...], model: str, alias: str, host: str, port: int, upstream_file: Path, limits: GatewayLimits
) -> list[str]:
    """How a gateway is started, whatever runs it (``python`` runs a module: ``("python", "-m")``)."""
    where = ["--host", host, "--port", str(port), "--upstream-file", str(upstream_file)]
    return [*python, "mlplatform.serving.gateway", "--model", model, "--alias", alias, *where, *limits.arguments()]


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
