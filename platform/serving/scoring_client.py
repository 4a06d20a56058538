"""HTTP client of a scoring server or gateway: MLflow's protocol (``/ping``, ``/invocations`` with
``dataframe_split``), waiting for readiness, and the log tail that explains a server that never became ready."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd

PING_TIMEOUT_S = 120


class ServerError(RuntimeError):
    """A server did not start or answer; the message carries the tail of its log."""


def ping(url: str, timeout_s: float = 2) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_ready(
    url: str, running: Callable[[], bool], log: Callable[[], str], what: str, timeout_s: float = PING_TIMEOUT_S
) -> None:
    """Return once ``url`` answers /ping; raise ServerError with ``log()`` when ``running()`` turns false or time
    runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not running():
            raise ServerError(f"{what} exited before answering /ping:\n{log()}")
        if ping(url):
            return
        time.sleep(0.25)
    raise ServerError(f"{what} did not answer /ping within {timeout_s:.0f} s:\n{log()}")


def invocation_body(frame: pd.DataFrame) -> bytes:
    """``frame`` as MLflow's ``dataframe_split`` JSON."""
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


def invoke(url: str, frame: pd.DataFrame, timeout_s: float = 30) -> list:
    request = urllib.request.Request(
        f"{url}/invocations", data=invocation_body(frame), headers={"Content-Type": "application/json"}
    )
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
