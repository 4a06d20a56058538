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

from mlplatform.dagster_home import prepare
from mlplatform.serving.processes import BIN, spawn, stop_group
from mlplatform.settings import Settings

_SIGINT_DEFAULT_EXEC = (
    "import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
)


def start_dagster_dev(port: int, log: Path, env: dict[str, str], workspace: Path | None = None) -> subprocess.Popen:
    """``dagster dev`` of ``workspace`` (a ``workspace.yaml``, as users run it from the repository), else of the
    installed code location ``mlplatform.definitions``. ``env`` is the whole environment of the process (this venv's
    bin is put first on its PATH); the platform's home it names is prepared (``dagster.yaml``) before Dagster starts.
    """
    settings = Settings.from_mapping(env)
    prepare(settings)
    target = ["-w", str(workspace)] if workspace else ["-m", "mlplatform.definitions"]
    command = [sys.executable, "-c", _SIGINT_DEFAULT_EXEC, str(BIN / "dagster"), "dev", *target]
    # The settings resolved (DAGSTER_HOME included: without it, dagster dev makes a temporary home in its cwd).
    environment = {**settings.child_environment(env), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
    cwd = workspace.parent if workspace else None
    return spawn([*command, "-h", "127.0.0.1", "-p", str(port)], log, environment, cwd=cwd)


def stop_dagster_dev(process: subprocess.Popen, timeout_s: float = 30) -> None:
    stop_group(process.pid, signal.SIGINT, timeout_s)
    process.wait()
