"""``mlplatform dev``: Dagster's UI, daemon and code server (``dagster dev``) over this home's settings."""

from __future__ import annotations

import os

from mlplatform.dagster_home import prepare
from mlplatform.serving.processes import BIN
from mlplatform.settings import Settings, platform_variables


def run_dev(host: str, port: int) -> None:
    """Prepare the home, then become ``dagster dev`` with the resolved settings as its environment."""
    settings = Settings()
    prepare(settings)
    inherited = {k: v for k, v in os.environ.items() if k not in platform_variables()}
    env = settings.child_environment({**inherited, "PATH": f"{BIN}{os.pathsep}{inherited.get('PATH', '')}"})
    command = [str(BIN / "dagster"), "dev", "-m", "mlplatform.definitions", "-h", host, "-p", str(port)]
    os.execve(command[0], command, env)
