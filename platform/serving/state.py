"""What is being served, as the serving backends record it: ``<home>/serving/servers.json`` (under a file lock),
and the Prometheus ``file_sd`` target file that Blackbox probes and metric scrapes follow."""

from __future__ import annotations

import fcntl
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlplatform.logs import log_event, platform_logger

LOG = platform_logger("serving")
KEPT_LOGS = 4


class _HeldLocks(threading.local):
    """The roll-out locks this thread holds (``ServingState.rolling_out``)."""

    def __init__(self) -> None:
        self.paths: set[str] = set()


_HELD = _HeldLocks()


@dataclass
class Upstream:
    """One model version's scoring server."""

    version: int
    address: str  # http://host:port
    handle: str  # pid (local) or container name (Docker)
    log: str = ""


@dataclass
class ServerRecord:
    """One model@alias: its stable gateway and the upstream it currently routes to."""

    name: str
    model: str
    alias: str
    address: str  # the stable address clients use
    gateway: str  # pid or container name
    upstream: Upstream | None = None
    labels: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> ServerRecord:
        upstream = Upstream(**data["upstream"]) if data.get("upstream") else None
        return cls(**{**data, "upstream": upstream})


class ServingState:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "servers.json"
        self.targets_file = folder / "targets.json"

    def read(self) -> dict[str, ServerRecord]:
        """The records; a damaged file (a crash mid-write of an older version, a hand edit) reads as no records,
        with a warning and a copy of it kept beside, so that every ``serve`` command and the sensor go on working."""
        try:
            data = json.loads(self.file.read_text())
            return {name: ServerRecord.from_dict(item) for name, item in data.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            kept = self.file.with_name(f"{self.file.name}.damaged")
            if not kept.exists():
                shutil.copyfile(self.file, kept)
            log_event(LOG, "serving_state_damaged", level="warning", file=str(self.file), kept_as=str(kept),
                      error=type(exc).__name__, effect="the servers it recorded are no longer tracked")  # fmt: skip
            return {}

    @contextmanager
    def locked(self) -> Iterator[dict[str, ServerRecord]]:
        """Read, let the caller change the records, write them back (and the targets) atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self.read()
            yield records
            _write_atomically(self.file, {name: asdict(r) for name, r in records.items()})
            _write_atomically(self.targets_file, file_sd_targets(records.values()))

    def upstream_file(self, name: str) -> Path:
        return self.folder / name / "upstream.json"

    @contextmanager
    def rolling_out(self, name: str) -> Iterator[None]:
        """Held for the whole roll-out of one model@alias, so that two processes never switch it at once (a serving
        run and a process that moved the alias itself): the second waits, then finds the server as the first left
        it. A thread that holds it already (moving the alias, then rolling out) takes it again at no cost."""
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        path = str((folder / ".rollout.lock").resolve())
        held = _HELD.paths
        if path in held:
            yield
            return
        with open(path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            held.add(path)
            try:
                yield
            finally:
                held.discard(path)

    def rollout_in_progress(self, name: str) -> bool:
        """Whether some process is rolling ``name`` out right now (holds ``rolling_out``)."""
        try:
            with open(self.folder / name / ".rollout.lock") as lock:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except FileNotFoundError:
            return False
        except BlockingIOError:
            return True
        return False


def prune_logs(folder: Path, pattern: str, keep: int = KEPT_LOGS) -> None:
    """Delete all but the ``keep`` newest logs in ``folder`` matching ``pattern`` (one per server started)."""
    logs = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[keep:]:
        old.unlink(missing_ok=True)


def file_sd_targets(records) -> list[dict]:
    """Prometheus file_sd: one target per model@alias at its stable address, labelled model, alias, version."""
    return [
        {
            "targets": [r.address.removeprefix("http://")],
            "labels": {"model": r.model, "alias": r.alias, "version": str(r.upstream.version), "server": r.name},
        }
        for r in sorted(records, key=lambda r: r.name)
        if r.upstream is not None
    ]


def _write_atomically(path: Path, data) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    temporary.replace(path)


def write_upstream(path: Path, upstream: Upstream, columns: list[str] | None = None) -> None:
    """Where the gateway routes, and the columns the model takes (the gateway checks invocations against them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, {"url": upstream.address, "version": upstream.version, "columns": columns})
