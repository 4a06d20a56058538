"""Shadow traffic at a gateway: a share of live invocations is sent again, in the background, to another alias's
server; its answer is only compared with the one production gave, never returned.

The production answer never waits for the shadow: a request is queued after production answered, into a bounded
queue (full: dropped and counted), and a few workers send the queued requests on their own connections. Each pair
becomes Prometheus series (latency by role, outcome) and one line of ``shadow-pairs.jsonl`` in the gateway's
serving folder: the gateway has no app-db on purpose, so the platform ingests these lines later
(``mlplatform.appdb.shadow_pairs``), each once by its id. The file is bounded: past ``MAX_RECORD_BYTES`` it becomes
``shadow-pairs.jsonl.1`` (replacing the previous one) and a new one starts.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector
from prometheus_client import CollectorRegistry, Counter, Histogram

from mlplatform.logs import log_event, platform_logger

LOG = platform_logger("gateway")
RECORDS = "shadow-pairs.jsonl"
MAX_RECORD_BYTES = 4 * 1024 * 1024
QUEUE_SIZE = 256
WORKERS = 2
OUTCOMES = ("agree", "disagree", "error")


@dataclass(frozen=True)
class Mirrored:
    """One production invocation to send again: what was asked, what production answered and how fast."""

    url: str  # the shadow server's /invocations
    shadow_alias: str
    shadow_version: str
    production_version: str
    body: bytes
    content_type: str
    production_answer: bytes
    production_s: float


class ShadowMirror:
    def __init__(self, model: str, alias: str, folder: Path, registry: CollectorRegistry, timeout_s: float) -> None:
        self.model, self.alias, self.timeout_s = model, alias, timeout_s
        self.records = folder / RECORDS
        self.queue: asyncio.Queue[Mirrored] = asyncio.Queue(QUEUE_SIZE)
        self.latency = Histogram(
            "mlflow_serve_shadow_duration_seconds",
            "Time to answer a mirrored invocation, by role (production answered it, shadow was compared)",
            ("model", "alias", "role", "version"),
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.pairs = Counter(
            "mlflow_serve_shadow_pairs",
            "Mirrored invocations by outcome: agree, disagree, error (the shadow failed or did not answer)",
            ("model", "alias", "shadow_alias", "outcome"),
            registry=registry,
        )
        self.dropped = Counter(
            "mlflow_serve_shadow_dropped",
            "Mirrored invocations not compared (queue_full) or compared but not recorded (unwritable)",
            ("model", "alias", "reason"),
            registry=registry,
        )
        for reason in ("queue_full", "unwritable"):
            self.dropped.labels(model, alias, reason)
        self._file: IO[str] | None = None

    def offer(self, mirrored: Mirrored) -> None:
        """Queue without waiting; a full queue drops the request (counted): production never waits for a shadow."""
        try:
            self.queue.put_nowait(mirrored)
        except asyncio.QueueFull:
            self.dropped.labels(self.model, self.alias, "queue_full").inc()

    async def run(self) -> None:
        """The workers, until cancelled; they have their own connections, so they never take production's."""
        connector = TCPConnector(limit=WORKERS, keepalive_timeout=30)
        timeout = ClientTimeout(total=self.timeout_s)
        async with ClientSession(connector=connector, timeout=timeout, cookie_jar=DummyCookieJar()) as session:
            try:
                await asyncio.gather(*(self._work(session) for _ in range(WORKERS)))
            finally:
                if self._file is not None:
                    self._file.close()

    async def _work(self, session: ClientSession) -> None:
        while True:
            mirrored = await self.queue.get()
            self._record(mirrored, *await self._send(session, mirrored))

    async def _send(self, session: ClientSession, mirrored: Mirrored) -> tuple[float, int | None, str | None, bool]:
        started = time.perf_counter()
        try:
            headers = {"Content-Type": mirrored.content_type}
            async with session.post(mirrored.url, data=mirrored.body, headers=headers) as reply:
                answer, status = await reply.read(), reply.status
        except (TimeoutError, ClientError) as exc:
            return time.perf_counter() - started, None, type(exc).__name__, False
        took = time.perf_counter() - started
        if status != 200:
            return took, status, f"HTTP {status}", False
        return took, status, None, _predictions(answer) == _predictions(mirrored.production_answer)

    def _record(self, mirrored: Mirrored, shadow_s: float, status: int | None, error: str | None, agree: bool) -> None:
        outcome = "error" if error else "agree" if agree else "disagree"
        self.pairs.labels(self.model, self.alias, mirrored.shadow_alias, outcome).inc()
        self.latency.labels(self.model, self.alias, "production", mirrored.production_version).observe(
            mirrored.production_s
        )
        self.latency.labels(self.model, self.alias, "shadow", mirrored.shadow_version).observe(shadow_s)
        record = {
            "id": uuid.uuid4().hex,
            "recorded_at": datetime.now(UTC).isoformat(),
            "model_name": self.model,
            "alias": self.alias,
            "production_version": int(mirrored.production_version),
            "shadow_alias": mirrored.shadow_alias,
            "shadow_version": int(mirrored.shadow_version),
            "agreement": None if error else agree,
            "production_ms": round(mirrored.production_s * 1000, 3),
            "shadow_ms": round(shadow_s * 1000, 3),
            "shadow_status": status,
            "error": error,
        }
        try:
            self._append(json.dumps(record) + "\n")
        except OSError as exc:  # a read-only or full folder: the metrics above still count the pair
            self.dropped.labels(self.model, self.alias, "unwritable").inc()
            log_event(LOG, "shadow_record_unwritable", level="warning", file=str(self.records), error=str(exc))

    def _append(self, line: str) -> None:
        if self._file is not None and self._file.tell() + len(line) > MAX_RECORD_BYTES:
            self._file.close()
            self._file = None
            self.records.replace(self.records.with_name(RECORDS + ".1"))
        if self._file is None:
            self._file = open(self.records, "a", buffering=1)  # line-buffered: the platform reads whole lines
        self._file.write(line)


def _predictions(answer: bytes) -> object:
    """What an MLflow scoring answer predicts (its ``predictions``), or the bytes when it is not such an answer."""
    try:
        return json.loads(answer)["predictions"]
    except (ValueError, TypeError, KeyError):
        return answer
