"""The platform's scoring server: one process hosting several model versions, each under its own path prefix.

``mlflow models serve`` costs a 250 MB parent waiting on a 270 MB uvicorn worker and about 10 s to start, per
version. Here one aiohttp process (on uvloop, like the gateway) holds any number of versions, each at
``/models/<model>/<version>/`` with MLflow's scoring protocol (``GET ping``, ``health``, ``version``, ``POST
invocations``), answered by MLflow's own ``invocations`` function (payload formats, predictions and error JSON equal
``mlflow models serve``'s). A gateway's upstream is ``http://host:port/models/<model>/<version>``; it forwards
``upstream + path``, so it needs no change. ``GET /ping`` answers for the process itself.

Versions are loaded and unloaded while the others keep serving, by ``POST`` and ``DELETE`` on
``/-/models/<model>/<version>`` from loopback only (or ``--load`` at start, as the Docker backend does); a ``DELETE``
answers once the requests that version is still answering finished (at most the request timeout), so a slow
request survives a switch and the process is never stopped under it. A load goes
through ``model_loader.load_trusted``: the platform's trust check, and pickle loading allowed inside the loader
alone. Loads run one at a time, in a thread, so requests to the loaded versions go on meanwhile. No access log: a
line per request would grow the log without bound; loads, unloads and failures are logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvloop
from aiohttp import web
from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel
from mlflow.pyfunc.scoring_server import invocations
from mlflow.tracking import MlflowClient
from mlflow.version import VERSION

from mlplatform.logs import configure, log_event, platform_logger
from mlplatform.model_trust import UntrustedModel
from mlplatform.serving.model_loader import load_trusted
from mlplatform.serving.processes import exit_after_shutdown

LOG = platform_logger("scoring")
LOOPBACK = ("127.0.0.1", "::1")
SCORING_ROUTES = ("ping", "health", "version", "invocations")


@dataclass(frozen=True)
class Hosted:
    model: PyFuncModel
    input_schema: object


class Models:
    """The versions this process holds, loaded one at a time, with the requests each is answering."""

    def __init__(self, client: MlflowClient) -> None:
        self.client, self.hosted, self.loading = client, dict[tuple[str, int], Hosted](), asyncio.Lock()
        self.in_flight: dict[tuple[str, int], int] = {}
        self.finished = asyncio.Condition()

    async def load(self, model: str, version: int) -> None:
        async with self.loading:
            if (model, version) not in self.hosted:
                loaded = await asyncio.to_thread(load_trusted, self.client, model, version)
                self.hosted[(model, version)] = Hosted(loaded, loaded.metadata.get_input_schema())
                log_event(LOG, "scoring_model_loaded", model=model, version=version, hosted=len(self.hosted))

    @asynccontextmanager
    async def answering(self, key: tuple[str, int]) -> AsyncIterator[None]:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            self.in_flight[key] -= 1
            if not self.in_flight[key]:
                del self.in_flight[key]
            async with self.finished:
                self.finished.notify_all()

    async def unload(self, model: str, version: int, drain_s: float) -> bool:
        """Remove the version, then wait (at most ``drain_s``, the request timeout) for the requests it is still
        answering: whoever stops the process once it is empty must not cut a slow answer short."""
        key = (model, version)
        found = self.hosted.pop(key, None) is not None
        draining = self.in_flight.get(key, 0)
        async with self.finished:
            drained = await _wait_for(self.finished, lambda: key not in self.in_flight, drain_s)
        log_event(LOG, "scoring_model_unloaded", model=model, version=version, found=found, hosted=len(self.hosted),
                  draining=draining, drained=drained)  # fmt: skip
        return found


async def _wait_for(condition: asyncio.Condition, predicate: Callable[[], bool], timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(condition.wait_for(predicate), timeout_s)
    except TimeoutError:
        return False
    return True


def build_app(models: Models, timeout_s: float) -> web.Application:
    app = web.Application(client_max_size=1024**3)  # the gateway in front enforces the configured body limit

    async def alive(_: web.Request) -> web.Response:
        return web.Response(text="\n", content_type="application/json")

    async def score(request: web.Request) -> web.Response:
        model, endpoint = request.match_info["model"], request.match_info["endpoint"]
        hosted = models.hosted.get((model, int(request.match_info["version"])))
        if hosted is None or endpoint not in SCORING_ROUTES:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"{model} v{request.match_info['version']}/{endpoint}: "
                          "no such version or route in this scoring server")  # fmt: skip
        if endpoint in ("ping", "health"):
            return web.Response(text="\n", content_type="application/json")
        if endpoint == "version":
            return web.Response(text=VERSION, content_type="application/json")
        if request.method != "POST":
            return _error(405, "BAD_REQUEST", "invocations takes POST")
        body = await request.read()
        try:
            async with models.answering((model, int(request.match_info["version"]))):
                result = await asyncio.wait_for(
                    asyncio.to_thread(invocations, body, request.headers.get("Content-Type"), hosted.model,
                                      hosted.input_schema), timeout_s)  # fmt: skip
        except MlflowException as exc:
            return web.Response(status=exc.get_http_status_code(), text=exc.serialize_as_json(),
                                content_type="application/json")  # fmt: skip
        except TimeoutError:
            return web.Response(status=504, text="Request processing time exceeded limit",
                                content_type="application/json")  # fmt: skip
        return web.Response(status=result.status, text=result.response, content_type=result.mimetype)

    async def admin(request: web.Request) -> web.Response:
        if request.remote not in LOOPBACK:
            return _error(403, "PERMISSION_DENIED", "models are loaded and unloaded from loopback only")
        if request.method == "GET":
            hosted = [{"model": m, "version": v} for m, v in sorted(models.hosted)]
            busy = [{"model": m, "version": v, "requests": n} for (m, v), n in sorted(models.in_flight.items())]
            return web.json_response({"models": hosted, "in_flight": busy})
        model, version = request.match_info["model"], int(request.match_info["version"])
        if request.method == "DELETE":
            unloaded = await models.unload(model, version, timeout_s)
            return web.json_response({"model": model, "version": version, "unloaded": unloaded})
        try:
            await models.load(model, version)
        except UntrustedModel as exc:
            log_event(LOG, "scoring_model_refused", level="warning", model=model, version=version, reason=str(exc))
            return _error(403, "PERMISSION_DENIED", str(exc))
        except MlflowException as exc:
            log_event(LOG, "scoring_model_failed", level="warning", model=model, version=version, reason=exc.message)
            return web.Response(status=exc.get_http_status_code(), text=exc.serialize_as_json(),
                                content_type="application/json")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - whatever a broken model raised while loading, the server stays up
            LOG.exception("loading %s v%s failed", model, version)
            return _error(500, "INTERNAL_ERROR", f"{model} v{version} failed to load: {type(exc).__name__}: {exc}")
        return web.json_response({"model": model, "version": version, "loaded": True})

    version_pattern = r"{version:\d+}"
    app.router.add_get("/ping", alive)
    app.router.add_get("/health", alive)
    app.router.add_route("*", f"/models/{{model}}/{version_pattern}/{{endpoint}}", score)
    app.router.add_get("/-/models", admin)
    app.router.add_route("POST", f"/-/models/{{model}}/{version_pattern}", admin)
    app.router.add_route("DELETE", f"/-/models/{{model}}/{version_pattern}", admin)
    return app


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "message": message}, status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--load", action="append", default=[], metavar="MODEL/VERSION")
    args = parser.parse_args()
    configure()
    logging.getLogger("aiohttp.access").disabled = True
    loop = uvloop.new_event_loop()  # the gateway's loop: less CPU per request than asyncio's own
    asyncio.set_event_loop(loop)
    models = Models(MlflowClient())
    for item in args.load:
        model, _, version = item.rpartition("/")
        loop.run_until_complete(models.load(model, int(version)))
    web.run_app(build_app(models, MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()), host=args.host, port=args.port,
                access_log=None, print=None, reuse_address=True, loop=loop)  # fmt: skip
    exit_after_shutdown()


if __name__ == "__main__":
    main()
