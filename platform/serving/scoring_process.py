"""A scoring process of a local serving home, shared by every model@alias served from it.

It is started on demand by whichever serving run first needs it, under a file lock (several Dagster runs may serve at
the same moment), and recorded in its folder's ``process.json`` (``<home>/serving/scoring/`` for production's
versions, ``scoring-others/`` for the other aliases') with its identity-checked handle
(``pid:start``). Every version served from it is an upstream ``http://127.0.0.1:<port>/models/<model>/<version>``
whose handle is the process's. Loading and unloading a version leaves the others alone; the process stops when it
holds none. When it dies, every upstream in it stops answering ``/ping`` through its gateway, so the health check
sees each model@alias unhealthy, and the repair of each starts a new process (one, under the lock) and loads the
version again. Its log (``server-<port>.log``, one per process started) holds loads, unloads and failures only; the
newest few are kept.

A process may be started at a ``nice`` level: the local backend serves the versions of aliases other than
production from a second process at a lower CPU priority, so that their work (shadow traffic above all) yields the
cores to production's answers instead of competing with them.
"""

from __future__ import annotations

import fcntl
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplatform.serving.processes import base_environment, free_port, handle_of, running, spawn, stop
from mlplatform.serving.scoring_client import ServerError, log_tail, wait_ready
from mlplatform.serving.scoring_launch import model_path, scoring_command, scoring_environment
from mlplatform.serving.state import Upstream, _write_atomically, prune_logs

LOAD_TIMEOUT_S = 300  # a download from the tracking server and a load, on a busy machine


class ScoringProcess:
    def __init__(self, folder: Path, tracking_uri: str, nice: int = 0) -> None:
        self.folder, self.tracking_uri, self.nice = folder, tracking_uri, nice
        self.record_file = folder / "process.json"

    def started(self, upstream: Upstream) -> bool:
        """Whether ``upstream`` is a version served from this process (its log lies in this process's folder)."""
        return Path(upstream.log).parent == self.folder

    def load(self, model: str, version: int) -> Upstream:
        """Load ``model`` ``version`` into the running process (started first if none runs); its upstream."""
        with self._locked():
            record = self._alive() or self._start()
            try:
                _call("POST", f"{record['address']}/-{model_path(model, version)}")
            except ServerError as exc:
                self._stop_if_empty(record)
                raise ServerError(
                    f"{model} v{version} was not loaded: {exc}\n{log_tail(Path(record['log']))}"
                ) from None
            address = record["address"] + model_path(model, version)
            return Upstream(version=version, address=address, handle=record["handle"], log=record["log"])

    def warm(self) -> None:
        """Start the process now if none runs, holding no version yet, so that its start-up (about 7 s of imports)
        overlaps other work instead of delaying the first load; ``release`` stops it if it is still empty."""
        with self._locked():
            if self._alive() is None:
                self._start()

    def release(self) -> None:
        """Stop the running process if it holds no version (one ``warm`` started that nothing loaded into)."""
        with self._locked():
            record = self._alive()
            if record is not None:
                self._stop_if_empty(record)

    def unload(self, upstream: Upstream, still_served: bool) -> None:
        """Unload the version unless another model@alias still serves it; stop the process once it holds none."""
        with self._locked():
            if not running(upstream.handle):
                return  # died with every version in it; the repair starts another
            base, _, path = upstream.address.partition("/models/")
            record = {"address": base, "handle": upstream.handle}
            if not still_served:
                _call("DELETE", f"{base}/-/models/{path}")
            self._stop_if_empty(record)

    def hosted(self, address: str) -> list[dict]:
        """The versions the process at ``address`` holds."""
        return json.loads(_call("GET", f"{address}/-/models"))["models"]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _alive(self) -> dict | None:
        try:
            record = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not {"handle", "address", "log"} <= record.keys():
            return None  # a damaged record: a new process is started and recorded
        # Running is enough: a process busy answering may be slow to ping, and stopping it would take every version
        # in it down; one that truly hangs fails the load, and the run says so.
        return record if running(record["handle"]) else None

    def _start(self) -> dict:
        port = free_port()
        log = self.folder / f"server-{port}.log"
        command = scoring_command((sys.executable, "-m"), "127.0.0.1", port)
        if self.nice:  # `nice` execs the server: the same pid, and every thread it starts inherits the level
            command = ["nice", "-n", str(self.nice), *command]
        process = spawn(command, log, {**base_environment(), **scoring_environment(self.tracking_uri)}, self.folder)
        record = {"address": f"http://127.0.0.1:{port}", "handle": handle_of(process), "log": str(log)}
        try:
            wait_ready(record["address"], lambda: running(record["handle"]), lambda: log_tail(log), "scoring server")
        except BaseException:
            stop(record["handle"])
            raise
        _write_atomically(self.record_file, record)
        prune_logs(self.folder, "server-*.log")
        return record

    def _stop_if_empty(self, record: dict) -> None:
        try:
            empty = not self.hosted(record["address"])
        except ServerError:
            empty = False  # not answering now (busy): left running rather than taking its versions down
        if empty:
            stop(record["handle"])
            if self._recorded_handle() == record["handle"]:
                self.record_file.unlink(missing_ok=True)

    def _recorded_handle(self) -> str | None:
        try:
            return json.loads(self.record_file.read_text())["handle"]
        except (OSError, ValueError, KeyError):
            return None


def _call(method: str, url: str) -> bytes:
    """One admin request; ServerError with the server's message when it refuses or does not answer."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=LOAD_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise ServerError(f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServerError(f"{url} did not answer: {exc}") from None
