"""``mlplatform observe``: Prometheus, the Blackbox exporter and the platform exporter on loopback, over this home.

Prometheus and the Blackbox exporter are the Debian binaries (``apt-get install prometheus
prometheus-blackbox-exporter``); the exporter is ``mlplatform exporter``. Prometheus gets the shipped configuration
pointed at the local servers (``mlplatform.prometheus_config``) and the shipped rules. Everything runs until SIGTERM
or Ctrl-C, then all three stop.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlplatform.logs import log_event, platform_logger
from mlplatform.prometheus_config import local_config, monitoring_file
from mlplatform.serving.processes import alive, base_environment, free_port, spawn, stop_group
from mlplatform.settings import Settings

INSTALL_HINT = "install it with `sudo apt-get install prometheus prometheus-blackbox-exporter` (Debian, Ubuntu)"
LOG = platform_logger("observe")


class ObserveError(RuntimeError):
    """A binary is missing, or a server did not come up (the message has its log tail)."""


@dataclass
class Server:
    name: str
    url: str
    ready_path: str
    pid: int
    log: Path


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ObserveError(f"{name} is not installed: {INSTALL_HINT}")
    return path


def start_servers(settings: Settings, ports: dict[str, int], interval: str) -> list[Server]:
    """Start the exporter, the Blackbox exporter and Prometheus (port 0: a free one); return once all three answer,
    stopping whatever started if one does not."""
    prometheus_bin, blackbox_bin = binary("prometheus"), binary("prometheus-blackbox-exporter")
    folder = settings.home / "observe"
    folder.mkdir(parents=True, exist_ok=True)
    address = {name: f"127.0.0.1:{port or free_port()}" for name, port in ports.items()}
    config = local_config(settings, address["prometheus"], address["blackbox"], address["exporter"], interval)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    environment = base_environment()
    commands = {
        "exporter": (
            [sys.executable, "-m", "mlplatform.cli.main", "exporter", *_listen(address["exporter"])],
            settings.child_environment(environment),
            "/metrics",
        ),
        "blackbox": (
            [
                blackbox_bin,
                f"--config.file={monitoring_file(settings, 'blackbox/blackbox.yml')}",
                f"--web.listen-address={address['blackbox']}",
            ],
            environment,
            "/metrics",
        ),
        "prometheus": (
            [
                prometheus_bin,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'prometheus-data'}",
                f"--web.listen-address={address['prometheus']}",
            ],
            environment,
            "/-/ready",
        ),
    }
    servers: list[Server] = []
    try:
        for name, (command, env, ready) in commands.items():
            log = folder / f"{name}.log"
            process = spawn(command, log, env)
            servers.append(Server(name, f"http://{address[name]}", ready, process.pid, log))
        for server in servers:
            _wait_ready(server)
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def _listen(hostport: str) -> list[str]:
    host, port = hostport.rsplit(":", 1)
    return ["--host", host, "--port", port]


def _wait_ready(server: Server, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(server.pid):
            raise ObserveError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + server.ready_path, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise ObserveError(
        f"{server.name} did not answer {server.url} in {timeout_s:.0f} s:\n{server.log.read_text()[-3000:]}"
    )


def stop_servers(servers: list[Server]) -> None:
    for server in reversed(servers):
        stop_group(server.pid)


def run_observe(settings: Settings, ports: dict[str, int], interval: str, on_ready: Callable[[dict], None]) -> None:
    """Start the three servers, hand their URLs to ``on_ready`` once all answer, and keep them until SIGTERM or
    SIGINT (or until one of them exits: then the others stop too and ObserveError names it)."""
    stopped = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopped.set())
    servers = start_servers(settings, ports, interval)
    try:
        urls = {f"{server.name}_url": server.url for server in servers}
        log_event(LOG, "observe_started", **urls)
        on_ready(urls)
        while not stopped.wait(1.0):
            if dead := [server.name for server in servers if not alive(server.pid)]:
                raise ObserveError(f"{', '.join(dead)} exited; logs in {settings.home / 'observe'}")
    finally:
        stop_servers(servers)
        log_event(LOG, "observe_stopped")


def observe_command(args) -> int:
    """``mlplatform exporter`` and ``mlplatform observe``."""
    from mlplatform.prometheus_config import MonitoringFilesMissing

    settings = Settings()
    if args.command == "exporter":
        from mlplatform.exporter.server import run_exporter

        run_exporter(settings, args.host, args.port)
        return 0
    ports = {"exporter": args.exporter_port, "blackbox": args.blackbox_port, "prometheus": args.prometheus_port}

    def ready(urls: dict) -> None:
        text = json.dumps(urls) if args.json else "\n".join(f"{name:15} {url}" for name, url in urls.items())
        print(text, flush=True)

    try:
        run_observe(settings, ports, args.interval, ready)
    except (ObserveError, MonitoringFilesMissing) as exc:
        print(f"mlplatform observe: {exc}", file=sys.stderr)
        return 1
    return 0
