"""Shadow traffic at a gateway: a share of live invocations is sent again, in the background, to another alias's
server; its answer is only compared with the one production gave, never returned.

The production answer never waits for the shadow, and the gateway does not send it itself: after production
answered, the gateway hands the pair to its shadow sender (``mlplatform.serving.shadow_sender``), a companion
process at nice 10 started when shadowing is first needed, by writing it to the sender's stdin without waiting (more
than ``MAX_HANDOVER_BYTES`` not yet taken, or the sender's bounded queue full: dropped and counted; pairs a sender
that dies still held are counted as dropped too). The mirrored HTTP call and the comparison thus cost production's
event loop nothing, and run at a lower priority. The hand-over itself waits until production's answer is on its way
to the client. The sender appends each pair to ``shadow-pairs.jsonl`` in the gateway's serving folder and sends the
same records back in batches, from which the gateway keeps the Prometheus series (latency by role, outcome) on its
own ``/metrics``. The gateway has no app-db on purpose, so the platform ingests these lines later
(``mlplatform.appdb.shadow_pairs``), each once by its id. The file is bounded: past ``MAX_RECORD_BYTES`` it becomes
``shadow-pairs.jsonl.1`` (replacing the previous one) and a new one starts. A sender that dies is started again; it
exits when the gateway does.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry, Counter, Histogram

from mlplatform.logs import log_event, platform_logger

LOG = platform_logger("gateway")
RECORDS = "shadow-pairs.jsonl"
MAX_RECORD_BYTES = 4 * 1024 * 1024
QUEUE_SIZE = 256  # pairs the sender holds, besides the ones its workers are sending
WORKERS = 2
MAX_HANDOVER_BYTES = 4 * 1024 * 1024  # written to the sender but not yet read by it: beyond, pairs are dropped
RESTART_S = 1.0
OUTCOMES = ("agree", "disagree", "error")
_LENGTHS = struct.Struct(">III")  # a frame's header, body and production answer


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


def frame(mirrored: Mirrored) -> bytes:
    """``mirrored`` as the gateway writes it to its sender: three lengths, a JSON header of the text and number
    fields, then the request and production's answer as they are (plain data: nothing the sender reads can run)."""
    fields = asdict(mirrored)
    body, answer = fields.pop("body"), fields.pop("production_answer")
    header = json.dumps(fields).encode()
    return _LENGTHS.pack(len(header), len(body), len(answer)) + header + body + answer


async def read_frame(frames: asyncio.StreamReader) -> Mirrored | None:
    """The next pair ``frame`` wrote, or None once the gateway closed the pipe."""
    try:
        header_size, body_size, answer_size = _LENGTHS.unpack(await frames.readexactly(_LENGTHS.size))
        header = json.loads(await frames.readexactly(header_size))
        body, answer = await frames.readexactly(body_size), await frames.readexactly(answer_size)
    except asyncio.IncompleteReadError:
        return None
    return Mirrored(**header, body=body, production_answer=answer)


class PairRecords:
    """Compared pairs become records: one line each of the record file (rotated), each record also passed to
    ``counted``; a record the folder refuses is passed to ``dropped`` as ``unwritable``."""

    def __init__(
        self, model: str, alias: str, folder: Path, counted: Callable[[dict], None], dropped: Callable[[str], None]
    ) -> None:
        self.model, self.alias, self.counted, self.dropped = model, alias, counted, dropped
        self.records = folder / RECORDS
        self._file: IO[str] | None = None

    def record(self, mirrored: Mirrored, shadow_s: float, status: int | None, error: str | None, agree: bool) -> None:
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
        except OSError as exc:  # a read-only or full folder: the metrics still count the pair
            self.dropped("unwritable")
            log_event(LOG, "shadow_record_unwritable", level="warning", file=str(self.records), error=str(exc))
        self.counted(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def _append(self, line: str) -> None:
        if self._file is not None and self._file.tell() + len(line) > MAX_RECORD_BYTES:
            self._file.close()
            self._file = None
            self.records.replace(self.records.with_name(RECORDS + ".1"))
        if self._file is None:
            self._file = open(self.records, "a", buffering=1)  # line-buffered: the platform reads whole lines
        self._file.write(line)


class ShadowMirror:
    """The gateway's side: hands pairs to its sender process, counts what the sender reports."""

    def __init__(self, model: str, alias: str, folder: Path, registry: CollectorRegistry, timeout_s: float) -> None:
        self.model, self.alias, self.timeout_s = model, alias, timeout_s
        self.folder = folder
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
            "Mirrored invocations not compared (queue_full: no room; sender_ended: held by a shadow sender that died)"
            " or compared but not recorded (unwritable)",
            ("model", "alias", "reason"),
            registry=registry,
        )
        for reason in ("queue_full", "sender_ended", "unwritable"):
            self.dropped.labels(model, alias, reason)
        self._sender: asyncio.subprocess.Process | None = None
        self._waiting: list[bytes] = []  # handed over while the sender starts
        self._outstanding = 0  # written to the running sender, not yet reported back by it
        self._needed = asyncio.Event()

    def offer(self, mirrored: Mirrored) -> None:
        """Hand over without waiting; what the sender cannot take now is dropped (counted): production never waits
        for a shadow. The first offer starts the sender; until it runs, up to ``QUEUE_SIZE`` pairs wait for it."""
        sender = self._sender
        if sender is None or sender.stdin is None or sender.stdin.is_closing():
            self._needed.set()
            if len(self._waiting) < QUEUE_SIZE:
                self._waiting.append(frame(mirrored))
            else:
                self._dropped("queue_full")
        elif sender.stdin.transport.get_write_buffer_size() > MAX_HANDOVER_BYTES:
            self._dropped("queue_full")
        else:
            sender.stdin.write(frame(mirrored))
            self._outstanding += 1

    async def run(self) -> None:
        """Once shadowing is needed: the sender process, started again whenever it ends, until cancelled."""
        await self._needed.wait()
        while True:
            sender = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mlplatform.serving.shadow_sender", "--model", self.model, "--alias",
                self.alias, "--folder", str(self.folder), "--timeout-s", str(self.timeout_s),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert sender.stdin is not None and sender.stdout is not None
            sender.stdin.write(b"".join(self._waiting))
            self._outstanding += len(self._waiting)
            self._waiting.clear()
            self._sender = sender
            try:
                while line := await sender.stdout.readline():
                    for report in json.loads(line):
                        self._report(report)
                code = await sender.wait()
            finally:
                self._sender = None
                sender.stdin.close()  # the sender exits at the end of its input
                self._dropped("sender_ended", self._outstanding)  # what it held is not coming back
                self._outstanding = 0
            log_event(LOG, "shadow_sender_ended", level="warning", model=self.model, alias=self.alias, code=code)
            await asyncio.sleep(RESTART_S)

    def _report(self, report: dict) -> None:
        if report.get("dropped") == "unwritable":  # its record follows: still outstanding until then
            self._dropped("unwritable")
            return
        self._outstanding -= 1
        if "dropped" in report:
            self._dropped(report["dropped"])
        else:
            self._counted(report)

    def _counted(self, record: dict) -> None:
        outcome = "error" if record["error"] else "agree" if record["agreement"] else "disagree"
        self.pairs.labels(self.model, self.alias, record["shadow_alias"], outcome).inc()
        self.latency.labels(self.model, self.alias, "production", str(record["production_version"])).observe(
            record["production_ms"] / 1000
        )
        self.latency.labels(self.model, self.alias, "shadow", str(record["shadow_version"])).observe(
            record["shadow_ms"] / 1000
        )

    def _dropped(self, reason: str, pairs: int = 1) -> None:
        self.dropped.labels(self.model, self.alias, reason).inc(pairs)
