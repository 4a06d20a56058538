"""A Prometheus collector over the exporter's sources, each read at most once per cache period.

A scrape between two reads is served from the cache, so a 15 s scrape interval costs the stores one read per
``MLPLATFORM_EXPORTER_CACHE_SECONDS``. A source that fails to read reports ``mlplatform_exporter_source_up 0`` and
exports nothing else until it reads again: no stale value poses as a current one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlplatform.logs import log_event, platform_logger

Source = Callable[[], list[Metric]]
LOG = platform_logger("exporter")


class CachedCollector(Collector):
    def __init__(self, sources: dict[str, Source], cache_seconds: float) -> None:
        self.sources, self.cache_seconds = sources, cache_seconds
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._metrics: dict[str, list[Metric]] = {}
        self._up: dict[str, bool] = {}
        self._seconds: dict[str, float] = {}
        self._last_success: dict[str, float] = {}
        self._errors: dict[str, int] = dict.fromkeys(sources, 0)
        self._reads = 0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                self._read_all()
            for name in self.sources:
                yield from self._metrics.get(name, [])
            yield from self._health()

    def _read_all(self) -> None:
        self._read_at = time.monotonic()
        self._reads += 1
        for name, read in self.sources.items():
            started = time.perf_counter()
            try:
                self._metrics[name] = read()
                self._up[name] = True
                self._last_success[name] = time.time()
            except Exception as exc:  # noqa: BLE001 - a store that is down is reported, never fatal
                self._metrics[name] = []
                self._up[name] = False
                self._errors[name] += 1
                log_event(
                    LOG, "exporter_read_failed", level="warning", source=name, error=f"{type(exc).__name__}: {exc}"
                )
            self._seconds[name] = time.perf_counter() - started

    def _health(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "mlplatform_exporter_source_up", "1 when the last read of the source worked", labels=["source"]
        )
        seconds = GaugeMetricFamily(
            "mlplatform_exporter_source_read_seconds", "Duration of the last read of the source", labels=["source"]
        )
        success = GaugeMetricFamily(
            "mlplatform_exporter_source_last_success_timestamp_seconds",
            "When the source was last read successfully",
            labels=["source"],
        )
        errors = CounterMetricFamily(
            "mlplatform_exporter_source_errors", "Failed reads of the source", labels=["source"]
        )
        for name in self.sources:
            up.add_metric([name], 1.0 if self._up.get(name) else 0.0)
            seconds.add_metric([name], self._seconds.get(name, 0.0))
            errors.add_metric([name], self._errors[name])
            if name in self._last_success:
                success.add_metric([name], self._last_success[name])
        reads = CounterMetricFamily("mlplatform_exporter_reads", "Reads of the stores (at most one per cache period)")
        reads.add_metric([], self._reads)
        cache = GaugeMetricFamily("mlplatform_exporter_cache_seconds", "How long a read is reused")
        cache.add_metric([], self.cache_seconds)
        return [up, seconds, success, errors, reads, cache]
