"""``mlplatform exporter``: the platform's stores as a Prometheus endpoint (``/metrics``) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import functools
import signal
import threading

from prometheus_client import CollectorRegistry, start_http_server

from mlplatform import dagster_home
from mlplatform.exporter.collector import CachedCollector
from mlplatform.exporter.readings import (
    appdb_metrics,
    asset_schedule_seconds,
    dagster_metrics,
    registry_metrics,
    serving_metrics,
)
from mlplatform.logs import configure, log_event, platform_logger
from mlplatform.resources.build import build_resources
from mlplatform.settings import Settings

LOG = platform_logger("exporter")


def platform_collector(settings: Settings) -> CachedCollector:
    """The collector over this home's registry, app-db, Dagster instance and serving records. Each store is opened
    on its first read, so a store that is down at start is reported (``mlplatform_exporter_source_up 0``) and
    read once it is back."""
    resources = build_resources(settings, environ={})
    registry = resources["mlflow"].registry()
    state = resources["serving"].open().state
    instance = functools.cache(lambda: dagster_home.instance(settings))
    schedule = asset_schedule_seconds()
    sources = {
        "mlflow": lambda: registry_metrics(registry.registered_models(), registry.model_versions()),
        "appdb": lambda: appdb_metrics(resources["app_db"].engine, registry.aliases),
        "dagster": lambda: dagster_metrics(instance(), schedule),
        "serving": lambda: serving_metrics(state),
    }
    return CachedCollector(sources, settings.exporter_cache_seconds)


def run_exporter(settings: Settings, host: str, port: int) -> None:
    configure()
    metrics = CollectorRegistry(auto_describe=False)
    metrics.register(platform_collector(settings))
    server, thread = start_http_server(port, addr=host, registry=metrics)
    log_event(LOG, "exporter_started", url=f"http://{host}:{port}/metrics", home=str(settings.home))
    stopped = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopped.set())
    stopped.wait()
    server.shutdown()
    thread.join(timeout=5)
    log_event(LOG, "exporter_stopped")
