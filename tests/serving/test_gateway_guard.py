"""The gateway as a hostile client meets it: a real gateway process in front of a real HTTP upstream that records
what reaches it (and can be slow, or echo whole bodies as MLflow's scoring server does in its errors)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlplatform.serving.processes import free_port, stop_group

from processes import wait_for_http

COLUMNS = ["a", "b"]
GOOD = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}}).encode()


class Upstream(ThreadingHTTPServer):
    """Answers /ping, and /invocations after ``delay_s``; a body starting with ``echo`` comes back in a 400."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay_s, self.posts = 0.0, 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._reply(200, b"{}")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.posts += 1
        time.sleep(self.server.delay_s)
        if body.startswith(b"echo"):
            self._reply(400, json.dumps({"message": body.decode()}).encode())
        else:
            self._reply(200, b'{"predictions": [0]}')

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def upstream():
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def gateway(upstream, tmp_path):
    route = tmp_path / "upstream.json"
    route.write_text(json.dumps({"url": upstream.url, "version": 7, "columns": COLUMNS}))
    port = free_port()
    command = [sys.executable, "-m", "mlplatform.serving.gateway", "--model", "m", "--alias", "Production",
               "--port", str(port), "--upstream-file", str(route),
               "--max-body-mb", "1", "--max-concurrency", "2", "--timeout-s", "1"]  # fmt: skip
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/metrics", process, log, timeout_s=60)
        yield url
    finally:
        stop_group(process.pid)
        process.wait()


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _metrics(url: str) -> str:
    return urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()


def test_metric_labels_stay_bounded_whatever_paths_clients_send(gateway):
    for i in range(25):
        urllib.request.urlopen(f"{gateway}/random/path/{i}?q={i}", timeout=10).read()
    endpoints = {
        line.split('endpoint="')[1].split('"')[0]
        for line in _metrics(gateway).splitlines()
        if line.startswith("mlflow_serve_requests_total{")
    }
    assert endpoints == {"other"}


def test_an_oversized_body_is_413_without_echo_and_the_gateway_stays_up(gateway, upstream):
    status, body = _post(gateway, b"echo" + b"x" * (2 * 1024 * 1024))
    assert status == 413 and b"xxxx" not in body
    assert upstream.posts == 0
    assert _post(gateway, GOOD)[0] == 200


def test_an_upstream_error_echoing_a_large_body_is_cut(gateway):
    status, body = _post(gateway, b"echo" + b"y" * 500_000, "text/plain")  # not JSON: the upstream answers
    assert status == 400 and len(body) < 4096


def test_a_slow_upstream_times_out_once_and_the_post_is_not_sent_again(gateway, upstream):
    upstream.delay_s = 3
    started = time.monotonic()
    status, body = _post(gateway, GOOD)
    assert status == 504 and json.loads(body)["error_code"] == "UPSTREAM_TIMEOUT"
    assert time.monotonic() - started < 2.5
    time.sleep(3)  # anything re-sent would have arrived by now
    assert upstream.posts == 1


def test_requests_beyond_the_concurrency_cap_get_503_and_are_counted(gateway, upstream):
    upstream.delay_s = 0.8
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: _post(gateway, GOOD)[0], range(6)))
    assert statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
    assert 'code="503",endpoint="invocations"' in _metrics(gateway)
    assert upstream.posts == statuses.count(200)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"[" * 100_000, "nested too deeply"),
        (json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}).encode(), "'c'"),
    ],
)
def test_bad_invocations_are_refused_before_the_upstream_and_counted(gateway, upstream, body, message):
    status, answer = _post(gateway, body)
    assert status == 400 and message in json.loads(answer)["message"]
    assert upstream.posts == 0
    assert 'code="400",endpoint="invocations"' in _metrics(gateway)
