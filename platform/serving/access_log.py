"""The gateway's access log: one JSON line per request (``mlplatform.logs``), with the model, alias and the version
that answered, so Loki can filter a model@alias's traffic by version. Prometheus' scrapes of /metrics are not
logged."""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from mlplatform.logs import log_event

UNLOGGED_PATHS = {"/metrics"}


def access_log_class(model: str, alias: str) -> type[AbstractAccessLogger]:
    """An aiohttp access logger class for the gateway of ``model@alias``."""

    class GatewayAccessLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            if request.path in UNLOGGED_PATHS:
                return
            log_event(
                self.logger,
                "access",
                level="warning" if response.status >= 500 else "info",
                model=model,
                alias=alias,
                version=response.headers.get("X-Model-Version") or None,
                method=request.method,
                path=request.path,
                status=response.status,
                seconds=round(time, 6),
                bytes=response.body_length,
                remote=request.remote,
            )

    return GatewayAccessLogger
