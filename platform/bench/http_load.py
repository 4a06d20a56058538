"""HTTP load on ``/invocations``: C concurrent clients in one asyncio loop, each posting the same body over its own
keep-alive connection and timing every answer.

``alternate`` loads several addresses in turn, in short slices whose order flips every round (A B, B A, ...), so
that on a shared, noisy machine each address meets the same conditions; ``until_stopped`` loads one address until
told to stop (load in the background of something else). The clients cost little next to a scoring server (an
answer is read, not decoded); ``bench serve`` reports their share of one core as ``client_cpu_share``.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

SLICE_S = 1.0
WARM_UP_S = 0.5  # per address, not counted: connections opened, caches warm
TIMEOUT_S = 30.0
HEADERS = {"Content-Type": "application/json"}


@dataclass
class Tally:
    """What one address answered: the latency of every 200 in seconds, the other answers and failures, and the
    seconds it was under load."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""

    def figures(self) -> dict:
        ordered = sorted(self.latencies)
        return {
            "requests": len(ordered) + self.errors,
            "requests_per_s": round(len(ordered) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(statistics.median(ordered) * 1000, 3) if ordered else None,
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3) if ordered else None,
            "errors": self.errors,
        }


def alternate(addresses: dict[str, str], body: bytes, concurrency: int, seconds: float) -> dict[str, Tally]:
    """Each address (name -> base URL) under ``concurrency`` clients for ``seconds`` in all, in alternating slices."""
    return asyncio.run(_alternate(addresses, body, concurrency, seconds))


def until_stopped(address: str, body: bytes, concurrency: int, stop: threading.Event, tally: Tally) -> None:
    """``address`` under ``concurrency`` clients until ``stop`` is set, counted in ``tally`` as answers come."""
    asyncio.run(_until_stopped(address, body, concurrency, stop, tally))


async def _alternate(addresses: dict[str, str], body: bytes, concurrency: int, seconds: float) -> dict[str, Tally]:
    tallies = {name: Tally() for name in addresses}
    sessions = {name: _session(concurrency) for name in addresses}
    try:
        for name in addresses:
            await _load(sessions[name], addresses[name], body, concurrency, _after(WARM_UP_S), Tally())
        slices = max(1, round(seconds / SLICE_S))
        for number in range(slices):
            for name in list(addresses) if number % 2 == 0 else list(reversed(addresses)):
                await _load(sessions[name], addresses[name], body, concurrency, _after(seconds / slices), tallies[name])
    finally:
        for session in sessions.values():
            await session.close()
    return tallies


async def _until_stopped(address: str, body: bytes, concurrency: int, stop: threading.Event, tally: Tally) -> None:
    async with _session(concurrency) as session:
        await _load(session, address, body, concurrency, stop.is_set, tally)


def _after(seconds: float) -> Callable[[], bool]:
    deadline = time.perf_counter() + seconds
    return lambda: time.perf_counter() >= deadline


def _session(concurrency: int) -> ClientSession:
    return ClientSession(connector=TCPConnector(limit=concurrency), timeout=ClientTimeout(total=TIMEOUT_S))


async def _load(
    session: ClientSession, address: str, body: bytes, concurrency: int, done: Callable[[], bool], tally: Tally
) -> None:
    url = f"{address}/invocations"

    async def client() -> None:
        while not done():
            begin = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=HEADERS) as reply:
                    await reply.read()
                    status = reply.status
            except (ClientError, TimeoutError) as exc:
                status, tally.first_error = 0, tally.first_error or f"{type(exc).__name__}: {exc}"[:200]
            if status == 200:
                tally.latencies.append(time.perf_counter() - begin)
            else:
                tally.errors += 1
                tally.first_error = tally.first_error or f"HTTP {status}"

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    tally.seconds += time.perf_counter() - started
