"""Local processes the platform starts and stops: loopback ports, spawning with an explicit environment, and
stopping a whole process group. The processes run in their own session, so they outlive the Dagster run that
started them; callers record their pids to find them again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

BIN = Path(sys.executable).parent  # this interpreter's bin: `mlflow models serve` execs `uvicorn` by name from PATH


def exit_after_shutdown() -> NoReturn:
    """End a server process once its app has shut down gracefully (requests answered, sockets closed): flush the
    logs and exit without the interpreter's teardown, which takes about 1 s with MLflow and scikit-learn loaded and
    which every switch's unload and every stop would otherwise wait for."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_environment() -> dict[str, str]:
    """What any child needs to run at all, and nothing of the platform's configuration or credentials."""
    kept = {name: os.environ[name] for name in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if name in os.environ}
    return {**kept, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", os.defpath)])}


def spawn(command: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """Start ``command`` in its own session with exactly ``env``, appending its output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def handle_of(process: subprocess.Popen) -> str:
    """A handle naming this very process: ``pid:start`` (its start time in clock ticks since boot), so a pid the
    system has given to another process since (after a restart, or a crash) is never taken for ours."""
    return f"{process.pid}:{_start_ticks(process.pid)}"


def running(handle: str) -> bool:
    """Whether the process ``handle`` names is still running (the same pid with the same start time)."""
    pid, start = _parse(handle)
    return pid is not None and alive(pid) and _start_ticks(pid) == start


def stop(handle: str, first_signal: int = signal.SIGTERM, timeout_s: float = 15) -> None:
    """Stop the process group of ``handle`` if, and only if, that process is still ours."""
    pid, _ = _parse(handle)
    if pid is not None and running(handle):
        stop_group(pid, first_signal, timeout_s)


def _parse(handle: str) -> tuple[int | None, str]:
    pid, _, start = handle.partition(":")
    return (int(pid), start) if pid.isdigit() and start else (None, "")


def _start_ticks(pid: int) -> str:
    try:  # field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop_group(pid: int | None, first_signal: int = signal.SIGTERM, timeout_s: float = 15) -> None:
    """Send ``first_signal`` to the process group led by ``pid`` and wait until every process in it has ended, not
    only its leader (``dagster dev``'s run processes may outlive it by a moment, and a serving run would start a
    server after the group was said to be stopped); SIGKILL what is left after ``timeout_s``."""
    if not pid or not group_members(pid):
        return
    try:
        os.killpg(pid, first_signal)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_members(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def group_members(group: int) -> list[int]:
    """The processes of process group ``group`` that have not exited (zombies, exited but not yet reaped, are not
    counted: they have nothing left to do)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, member_of = stat.read_text().rsplit(") ", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if state != "Z" and int(member_of) == group:
            members.append(int(stat.parent.name))
    return members
