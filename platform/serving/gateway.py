"""The stable address of one model@alias: an HTTP gateway in front of the version currently serving it.

Every request goes to the upstream named in ``upstream.json`` (re-read when the file changes), so a new version
takes over between two requests and clients never see the switch. The gateway also gives MLflow's scoring server
what it lacks: Prometheus metrics per model, alias and version on ``/metrics``, and a guard in front of it: a body
limit (413), a cap on requests in flight (503), a per-request timeout with no re-sent POST (504), and invocations
checked against the model's columns (400 naming the problem, never echoing the body). Metric labels are bounded:
the endpoint is one of the routes MLflow serves, or ``other``.

A production gateway can also split its invocations (``traffic.json`` beside ``upstream.json``, re-read when it
changes; see ``mlplatform.serving.traffic``): a canary weight answered by another alias's server (sticky per
``X-Client-Key``; ``X-Model-Alias`` and ``X-Model-Version`` say who answered), and a shadow share sent again to
another alias's server after production answered (``mlplatform.serving.shadow``).

``python -m mlplatform.serving.gateway --model M --alias A --port P --upstream-file F [limits]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path

import uvloop
from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, web
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
from mlplatform.serving.backend import GatewayLimits
from mlplatform.serving.processes import exit_after_shutdown
from mlplatform.serving.request_checks import Rejection, check_invocation
from mlplatform.serving.shadow import Mirrored, ShadowMirror
from mlplatform.serving.traffic import CLIENT_KEY_HEADER, Split, goes_to_canary, read_splits, traffic_file

LABELS = ("model", "alias", "version")
ENDPOINTS = ("invocations", "ping", "health", "version")  # MLflow's scoring routes; anything else is "other"
IDEMPOTENT = ("GET", "HEAD", "OPTIONS")  # the only requests sent again after a switch; a POST never is
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}
UPSTREAM_POLL_S = 0.1
MAX_ERROR_BYTES = 2048  # an upstream error longer than this is cut: MLflow quotes whole bodies in its errors


class RouteFile:
    """Where the gateway routes: the upstream file (URL, version, the model's columns), re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url: str | None = None
        self.version: str | None = None
        self.columns: list[str] | None = None
        self._mtime: int | None = None

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):  # missing, or caught half-written: keep the last good route
            return
        self.url, self.version, self._mtime = data["url"], str(data["version"]), mtime
        self.columns = data.get("columns")


class TrafficRoutes:
    """The splits of ``traffic.json`` and the routes of the servers they name, re-read when they change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.splits: dict[str, Split] = {}
        self.routes: dict[str, RouteFile] = {}
        self._mtime: int | None = None

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns if self.path.exists() else None
            if mtime != self._mtime:
                self.splits, self._mtime = read_splits(self.path), mtime
        except (OSError, ValueError, TypeError):  # caught half-written or hand-damaged: keep the last good splits
            pass
        for split in self.splits.values():
            self.route(split).refresh()

    def route(self, split: Split) -> RouteFile:
        if split.server not in self.routes:
            self.routes[split.server] = RouteFile(self.path.parent.parent / split.server / "upstream.json")
        return self.routes[split.server]

    def serving(self, kind: str) -> tuple[Split, RouteFile] | None:
        """The split of ``kind`` and its server's route, when both are in force."""
        split = self.splits.get(kind)
        if split is None or self.route(split).url is None:
            return None
        return split, self.route(split)


def endpoint_of(path: str) -> str:
    name = path.strip("/")
    return name if name in ENDPOINTS else "other"


def build_app(model: str, alias: str, upstream_file: Path, limits: GatewayLimits) -> web.Application:
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
    route = RouteFile(upstream_file)
    route.refresh()
    traffic = TrafficRoutes(traffic_file(upstream_file))
    traffic.refresh()
    mirror = ShadowMirror(model, alias, upstream_file.parent, registry, limits.timeout_s)
    in_flight = asyncio.Semaphore(limits.max_concurrency)

    async def poll_upstream(app: web.Application):
        async def loop():
            while True:
                route.refresh()
                traffic.refresh()
                await asyncio.sleep(UPSTREAM_POLL_S)

        task, shadowing = asyncio.create_task(loop()), asyncio.create_task(mirror.run())
        connector = TCPConnector(limit=limits.max_concurrency, keepalive_timeout=30)  # kept-alive upstream connections
        app["session"] = ClientSession(
            connector=connector,
            timeout=ClientTimeout(total=limits.timeout_s),
            cookie_jar=DummyCookieJar(),  # one client's cookies are never sent on behalf of another
        )
        yield
        task.cancel()
        shadowing.cancel()
        await app["session"].close()

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def current(_request: web.Request) -> web.Response:
        splits = {kind: vars(split) for kind, split in traffic.splits.items()}
        return web.json_response(
            {"model": model, "alias": alias, "url": route.url, "version": route.version, "splits": splits}
        )

    # bounded: aliases x versions x routes x codes
    series: dict[tuple[str, str, str, int], tuple[Counter, Counter, Histogram]] = {}

    def answer(
        started: float, version: str, endpoint: str, response: web.Response, answering: str = alias
    ) -> web.Response:
        key = (answering, version, endpoint, response.status)
        if key not in series:  # errors are exported at 0 until the first one
            labels = (model, answering, version, endpoint)
            series[key] = (
                requests.labels(*labels, str(response.status)),
                errors.labels(*labels),
                latency.labels(*labels),
            )
        answered, failed, took = series[key]
        answered.inc()
        if response.status >= 500:
            failed.inc()
        took.observe(time.perf_counter() - started)
        response.headers["X-Model-Version"] = version
        response.headers["X-Model-Alias"] = answering
        return response

    def refuse(rejection: Rejection) -> web.Response:
        return web.json_response(rejection.as_json(), status=rejection.status)

    def answerer(request: web.Request, endpoint: str) -> tuple[str, RouteFile]:
        """Who answers: the canary alias for its weight of the invocations, otherwise this gateway's alias."""
        canary = traffic.serving("canary") if endpoint == "invocations" else None
        if canary is not None and goes_to_canary(request.headers.get(CLIENT_KEY_HEADER), canary[0].percent):
            return canary[0].alias, canary[1]
        return alias, route

    async def forward(request: web.Request) -> web.Response:
        started, endpoint = time.perf_counter(), endpoint_of(request.path)
        if route.url is None:
            return refuse(Rejection(503, "NOT_SERVING", f"{model}@{alias} has no version yet"))
        if in_flight.locked():
            return answer(
                started,
                route.version or "",
                endpoint,
                refuse(Rejection(503, "BUSY", f"more than {limits.max_concurrency} requests in flight")),
            )
        async with in_flight:
            body = await request.read()
            answering, chosen = answerer(request, endpoint)
            url, version = chosen.url or "", chosen.version or ""
            if endpoint == "invocations":
                rejection = check_invocation(body, request.content_type, chosen.columns, limits.strict_columns)
                if rejection is not None:
                    return answer(started, version, endpoint, refuse(rejection), answering)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
            try:
                response = await _send(request.app["session"], request.method, url + request.path_qs, headers, body)
            except (TimeoutError, ClientError) as exc:
                route.refresh()  # it may have just switched: an idempotent request goes once to the new upstream
                if request.method not in IDEMPOTENT or route.url in (None, url):
                    return answer(started, version, endpoint, _unavailable(model, answering, version, exc), answering)
                url, version = route.url, route.version or ""
                try:
                    response = await _send(request.app["session"], request.method, url + request.path_qs, headers, body)
                except (TimeoutError, ClientError) as again:
                    return answer(started, version, endpoint, _unavailable(model, alias, version, again))
            if answering == alias and response.status == 200 and endpoint == "invocations":
                shadow(body, request.content_type, version, response, time.perf_counter() - started)
            return answer(started, version, endpoint, response, answering)

    def shadow(body: bytes, content_type: str, version: str, response: web.Response, took_s: float) -> None:
        """Hand a share of production's invocations to the shadow sender, if a shadow is in force: on the loop's next
        turn, once production's answer is on its way to the client."""
        shadowing = traffic.serving("shadow")
        if shadowing is None or random.random() * 100 >= shadowing[0].percent:
            return
        split, other = shadowing
        if other.version == version:  # the shadow alias is on production's very version: nothing to compare
            return
        answer_body = response.body if isinstance(response.body, bytes) else b""
        mirrored = Mirrored(
            f"{other.url}/invocations", split.alias, other.version or "0", version, body, content_type, answer_body,
            took_s,
        )  # fmt: skip
        asyncio.get_running_loop().call_soon(mirror.offer, mirrored)

    app = web.Application(client_max_size=limits.max_body_mb * 1024 * 1024)
    app.cleanup_ctx.append(poll_upstream)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/upstream", current)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def _unavailable(model: str, alias: str, version: str, exc: BaseException) -> web.Response:
    timed_out = isinstance(exc, TimeoutError)
    status, code = (504, "UPSTREAM_TIMEOUT") if timed_out else (502, "UPSTREAM_UNAVAILABLE")
    reason = "did not answer in time" if timed_out else f"is unreachable ({type(exc).__name__})"
    return web.json_response({"error_code": code, "message": f"{model}@{alias} v{version} {reason}"}, status=status)


async def _send(session: ClientSession, method: str, url: str, headers: dict, body: bytes) -> web.Response:
    async with session.request(method, url, headers=headers, data=body) as reply:
        payload = await reply.read()
        if reply.status >= 400 and len(payload) > MAX_ERROR_BYTES:
            payload = payload[:MAX_ERROR_BYTES] + b"... (cut)"
        kept = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_HEADERS}
        return web.Response(status=reply.status, body=payload, headers=kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-file", type=Path, required=True)
    GatewayLimits.add_arguments(parser)
    args = parser.parse_args()
    configure()  # JSON access lines on stderr (mlplatform.logs)
    web.run_app(
        build_app(args.model, args.alias, args.upstream_file, GatewayLimits.from_arguments(args)),
        host=args.host,
        port=args.port,
        access_log=platform_logger("gateway"),
        access_log_class=access_log_class(args.model, args.alias),
        print=None,
        reuse_address=True,
        loop=uvloop.new_event_loop(),  # about a third less CPU per forwarded request than asyncio's own loop
    )
    exit_after_shutdown()


if __name__ == "__main__":
    main()
