"""``dagster dev`` as a child process that can actually be stopped.

Started from a non-interactive parent, ``dagster dev`` ignores SIGINT and maps SIGTERM to SIGINT, so ``kill`` does
nothing; restoring the default SIGINT handler before exec makes SIGINT stop it (webserver, daemon, code servers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
_SIGINT_DEFAULT_EXEC = (
    "import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
)


def start_dagster_dev(cwd: Path, port: int, log: Path, env: dict) -> subprocess.Popen:
    """``env`` is the whole environment of the process (this venv's bin is put first on its PATH)."""
    environment = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
    if environment.get("DAGSTER_HOME"):
        Path(environment["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", _SIGINT_DEFAULT_EXEC, str(BIN / "dagster"), "dev", "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_group(process: subprocess.Popen, timeout_s: float = 30) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
