"""The stable address of one model@alias: an HTTP gateway in front of the version currently serving it.

Every request goes to the upstream named in ``upstream.json`` (re-read when the file changes), so a new version
takes over between two requests and clients never see the switch. The gateway also gives MLflow's scoring server
what it lacks: Prometheus metrics per model, alias and version on ``/metrics``.

``python -m mlplatform.serving.gateway --model M --alias A --port P --upstream-file F``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from mlplatform.logs import configure, platform_logger
from mlplatform.serving.access_log import access_log_class

LABELS = ("model", "alias", "version")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}
UPSTREAM_POLL_S = 0.1


class RouteFile:
    """Where the gateway routes: the upstream file (URL and version), re-read whenever its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url: str | None = None
        self.version: str | None = None
        self._mtime: int | None = None

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            data = json.loads(self.path.read_text())
            self.url, self.version, self._mtime = data["url"], str(data["version"]), mtime


def build_app(model: str, alias: str, upstream_file: Path) -> web.Application:
    disable_created_metrics()
    registry = CollectorRegistry()
    requests = Counter("mlflow_serve_requests", "Requests answered", (*LABELS, "endpoint", "code"), registry=registry)
    errors = Counter(
        "mlflow_serve_request_errors", "Requests answered 5xx or not at all", (*LABELS, "endpoint"), registry=registry
    )
    latency = Histogram(
        "mlflow_serve_request_duration_seconds",
        "Time to answer",
        (*LABELS, "endpoint"),
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    upstream = RouteFile(upstream_file)
    upstream.refresh()

    async def poll_upstream(app: web.Application):
        async def loop():
            while True:
                upstream.refresh()
                await asyncio.sleep(UPSTREAM_POLL_S)

        task = asyncio.create_task(loop())
        app["session"] = ClientSession(
            connector=TCPConnector(limit=64, keepalive_timeout=30), timeout=ClientTimeout(total=60)
        )
        yield
        task.cancel()
        await app["session"].close()

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def current(_request: web.Request) -> web.Response:
        return web.json_response({"model": model, "alias": alias, "url": upstream.url, "version": upstream.version})

    async def forward(request: web.Request) -> web.Response:
        started = time.perf_counter()
        endpoint = request.path.strip("/") or "root"
        if upstream.url is None:
            return web.json_response(
                {"error_code": "NOT_SERVING", "message": f"{model}@{alias} has no version yet"}, status=503
            )
        version, body = upstream.version, await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        try:
            response = await _send(
                request.app["session"], request.method, upstream.url + request.path_qs, headers, body
            )
        except (TimeoutError, ClientError) as exc:
            upstream.refresh()  # it may have just switched: one retry on the current upstream
            if upstream.url is None:
                raise
            try:
                version = upstream.version
                response = await _send(
                    request.app["session"], request.method, upstream.url + request.path_qs, headers, body
                )
            except (TimeoutError, ClientError):
                errors.labels(model, alias, version, endpoint).inc()
                return web.json_response(
                    {"error_code": "UPSTREAM_UNAVAILABLE", "message": f"{model}@{alias} v{version}: {exc}"}, status=502
                )
        requests.labels(model, alias, version, endpoint, str(response.status)).inc()
        failed = errors.labels(model, alias, version, endpoint)  # exported at 0 until the first error
        if response.status >= 500:
            failed.inc()
        latency.labels(model, alias, version, endpoint).observe(time.perf_counter() - started)
        response.headers["X-Model-Version"] = version or ""
        return response

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.cleanup_ctx.append(poll_upstream)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/upstream", current)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def _send(session: ClientSession, method: str, url: str, headers: dict, body: bytes) -> web.Response:
    async with session.request(method, url, headers=headers, data=body) as reply:
        payload = await reply.read()
        kept = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_HEADERS}
        return web.Response(status=reply.status, body=payload, headers=kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-file", type=Path, required=True)
    args = parser.parse_args()
    configure()  # JSON access lines on stderr (mlplatform.logs)
    web.run_app(
        build_app(args.model, args.alias, args.upstream_file),
        host=args.host,
        port=args.port,
        access_log=platform_logger("gateway"),
        access_log_class=access_log_class(args.model, args.alias),
        print=None,
        reuse_address=True,
    )


if __name__ == "__main__":
    main()
