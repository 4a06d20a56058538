"""Local serving processes: ``mlflow models serve`` (and gateways) started, probed and stopped by pid.

The processes run in their own session, so they outlive the Dagster run that started them; the local backend
records their pids and ports in the platform home to find them again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

PING_TIMEOUT_S = 120
BIN = Path(sys.executable).parent


class ServerError(RuntimeError):
    """A server did not start or answer; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(model_uri: str, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port)]


def spawn(command: list[str], log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # `mlflow models serve` execs `uvicorn` by name: this interpreter's bin directory must be on PATH.
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)
    return process.pid


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop_process(pid: int | None, timeout_s: float = 15) -> None:
    if not alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)


def ping(url: str, timeout_s: float = 2) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_ready(url: str, pid: int, log_path: Path, what: str, timeout_s: float = PING_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            raise ServerError(f"{what} exited before answering /ping:\n{log_tail(log_path)}")
        if ping(url):
            return
        time.sleep(0.25)
    raise ServerError(f"{what} did not answer /ping within {timeout_s:.0f} s:\n{log_tail(log_path)}")


def invoke(url: str, frame: pd.DataFrame, timeout_s: float = 30) -> list:
    body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as exc:
        raise ServerError(f"{url}/invocations answered {exc.code}: {exc.read().decode(errors='replace')}") from None


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class LocalModelServer:
    """One ``mlflow models serve`` for the lifetime of a ``with`` block (the demo's round trip)."""

    def __init__(self, model_uri: str, log_path: Path) -> None:
        self.model_uri, self.log_path, self.port, self.pid = model_uri, log_path, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalModelServer:
        self.pid = spawn(serve_command(self.model_uri, self.port), self.log_path)
        return self

    def wait_ready(self) -> None:
        wait_ready(self.url, self.pid, self.log_path, f"server for {self.model_uri}")

    def invoke(self, frame: pd.DataFrame) -> list:
        return invoke(self.url, frame)

    def __exit__(self, *exc) -> None:
        stop_process(self.pid)
