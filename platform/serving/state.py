"""What is being served, as the serving backends record it: ``<home>/serving/servers.json`` (under a file lock),
and the Prometheus ``file_sd`` target file that Blackbox probes and metric scrapes follow."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


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
        if not self.file.exists():
            return {}
        return {name: ServerRecord.from_dict(data) for name, data in json.loads(self.file.read_text()).items()}

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


def write_upstream(path: Path, upstream: Upstream) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, {"url": upstream.address, "version": upstream.version})
