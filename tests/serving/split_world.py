"""A production gateway with a challenger beside it, as the canary and shadow tests need them: a real gateway process
(started by the local backend) routing to small real HTTP scoring stand-ins, recorded in a platform home's serving
state as the alias sensor would record them."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from mlplatform.cli.main import build_parser
from mlplatform.cli.serving_commands import serve_command
from mlplatform.serving.backend import GatewayLimits
from mlplatform.serving.local_backend import LocalProcessBackend
from mlplatform.serving.naming import server_name
from mlplatform.serving.processes import stop
from mlplatform.serving.state import ServerRecord, Upstream, write_upstream
from mlplatform.settings import Settings

MODEL, PRODUCTION, CHALLENGER = "m", "Production", "challenger"
COLUMNS = ["x"]


def body(x: int) -> bytes:
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[x]]}}).encode()


def serve(settings: Settings, kind: str, *arguments: str) -> tuple[int, str]:
    """``mlplatform serve canary|shadow m ...`` in this process (exit code, message)."""
    return serve_command(settings, build_parser().parse_args(["serve", kind, MODEL, *arguments]))


class Client:
    """One kept-alive connection to the gateway; returns (answering alias, version, prediction)."""

    def __init__(self, address: str) -> None:
        self.connection = http.client.HTTPConnection(urlsplit(address).netloc, timeout=30)

    def invoke(self, x: int, client_key: str | None = None) -> tuple[str, str, int]:
        headers = {"Content-Type": "application/json", **({"X-Client-Key": client_key} if client_key else {})}
        self.connection.request("POST", "/invocations", body(x), headers)
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        assert response.status == 200, payload
        return response.getheader("X-Model-Alias"), response.getheader("X-Model-Version"), payload["predictions"][0]


class Scorer(ThreadingHTTPServer):
    """Answers /ping, and /invocations with ``{"predictions": [predict(x)]}`` for the first row's ``x`` after
    ``delay_s``."""

    daemon_threads = True

    def __init__(self, predict: Callable[[int], int], delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.predict, self.delay_s = predict, delay_s
        self.invocations = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections, as the gateway keeps them
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK wait)
    server: Scorer

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._reply(b"{}")

    def do_POST(self):  # noqa: N802
        x = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["dataframe_split"]["data"][0][0]
        self.server.invocations += 1
        time.sleep(self.server.delay_s)
        self._reply(json.dumps({"predictions": [self.server.predict(x)]}).encode())

    def _reply(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # quiet
        pass


class SplitWorld:
    """``m@Production`` v1 (served by ``production``) behind a real gateway, ``m@challenger`` (v2 unless told)
    recorded beside it."""

    def __init__(
        self, settings: Settings, production: Scorer, challenger_url: str, challenger_version: int = 2
    ) -> None:
        self.backend = LocalProcessBackend(
            settings.home, settings.mlflow_tracking_uri, GatewayLimits(), settings.production_alias
        )
        state = self.backend.state
        with state.locked() as records:
            for alias, version, url in (
                (PRODUCTION, 1, production.url),
                (CHALLENGER, challenger_version, challenger_url),
            ):
                name = server_name(MODEL, alias)
                upstream = Upstream(version=version, address=url, handle="")
                write_upstream(state.upstream_file(name), upstream, COLUMNS)
                records[name] = ServerRecord(name, MODEL, alias, "", "", upstream)
        name = server_name(MODEL, PRODUCTION)
        self.address, self.handle = self.backend.start_gateway(name, MODEL, PRODUCTION, None)
        self.upstream_file = state.upstream_file(name)
        self._wait(lambda: self.current() is not None, "the gateway to answer")

    def current(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.address}/-/upstream", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def wait_splits(self, expected: dict[str, float]) -> None:
        """Until the gateway routes with the given percent per kind (it re-reads traffic.json by itself)."""

        def routed() -> bool:
            splits = (self.current() or {}).get("splits", {})
            return {kind: split["percent"] for kind, split in splits.items()} == expected

        self._wait(routed, f"the gateway to route with {expected}")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"{self.address}/metrics", timeout=10).read().decode()

    def close(self) -> None:
        stop(self.handle)

    @staticmethod
    def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s} s for {what}")
            time.sleep(0.05)
