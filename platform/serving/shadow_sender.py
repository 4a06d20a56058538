"""The gateway's shadow sender: a companion process, at nice 10, that sends the mirrored invocations to the shadow
alias's server, compares the answers and appends the pairs to ``shadow-pairs.jsonl`` (``mlplatform.serving.shadow``).

It is a process of its own so that the mirrored HTTP call (about 0.6 ms of CPU each) is neither taken from the
production gateway's event loop nor made at production's priority: the gateway only writes each pair to this
process's stdin. The sender reads them into a bounded queue (full: the pair is dropped), a few workers send them on
their own connections, and the outcomes go back to the gateway on stdout, a JSON list per line every
``REPORT_EVERY_S`` (each pair's record, or ``{"dropped": reason}``), from which the gateway keeps its Prometheus
series: one wake-up of the gateway's event loop per batch, not per pair. It exits when its stdin ends, that is
when the gateway exits, however it exits. Its imports are kept light (no MLflow, no pandas): it starts in 0.4 s.

``python -m mlplatform.serving.shadow_sender --model M --alias A --folder F --timeout-s S``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import IO

import uvloop
from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector

from mlplatform.logs import configure
from mlplatform.serving.shadow import QUEUE_SIZE, WORKERS, Mirrored, PairRecords, read_frame

NICE = 10  # as the challengers' scoring process: shadow work yields the CPU to production's
REPORT_EVERY_S = 0.25


class Sender:
    def __init__(self, model: str, alias: str, folder: Path, timeout_s: float, reports: IO[bytes]) -> None:
        self.timeout_s, self.reports = timeout_s, reports
        self.pairs = PairRecords(model, alias, folder, counted=self._report, dropped=self._dropped)
        self.queue: asyncio.Queue[Mirrored] = asyncio.Queue(QUEUE_SIZE)
        self._unreported: list[dict] = []

    async def run(self, frames: asyncio.StreamReader) -> None:
        """Until ``frames`` ends (the gateway exited): read, queue, send; what is still queued then is let go."""
        connector = TCPConnector(limit=WORKERS, keepalive_timeout=30)
        timeout = ClientTimeout(total=self.timeout_s)
        async with ClientSession(connector=connector, timeout=timeout, cookie_jar=DummyCookieJar()) as session:
            tasks = [asyncio.create_task(self._work(session)) for _ in range(WORKERS)]
            tasks.append(asyncio.create_task(self._report_periodically()))
            try:
                while (mirrored := await read_frame(frames)) is not None:
                    try:
                        self.queue.put_nowait(mirrored)
                    except asyncio.QueueFull:
                        self._dropped("queue_full")
            finally:
                for task in tasks:
                    task.cancel()
                self.pairs.close()
                self._send_reports()

    async def _work(self, session: ClientSession) -> None:
        while True:
            mirrored = await self.queue.get()
            self.pairs.record(mirrored, *await self._send(session, mirrored))

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

    def _dropped(self, reason: str) -> None:
        self._report({"dropped": reason})

    def _report(self, report: dict) -> None:
        self._unreported.append(report)

    async def _report_periodically(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            self._send_reports()

    def _send_reports(self) -> None:
        if self._unreported:
            with contextlib.suppress(BrokenPipeError):  # the gateway is gone: nobody is left to count them
                self.reports.write(json.dumps(self._unreported).encode() + b"\n")
                self.reports.flush()
            self._unreported = []


def _predictions(answer: bytes) -> object:
    """What an MLflow scoring answer predicts (its ``predictions``), or the bytes when it is not such an answer."""
    try:
        return json.loads(answer)["predictions"]
    except (ValueError, TypeError, KeyError):
        return answer


async def _serve(sender: Sender) -> None:
    frames = asyncio.StreamReader(limit=2**31 - 1)
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(frames), sys.stdin)
    await sender.run(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--timeout-s", type=float, required=True)
    args = parser.parse_args()
    os.nice(NICE)
    configure()  # its warnings on stderr, the gateway's
    uvloop.run(_serve(Sender(args.model, args.alias, args.folder, args.timeout_s, sys.stdout.buffer)))
    sys.stdout.flush()
    os._exit(0)  # the cancelled workers' connections need no orderly teardown


if __name__ == "__main__":
    main()
