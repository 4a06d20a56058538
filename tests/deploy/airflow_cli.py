"""Real Airflow 3 for tests: the CLI of `.venv-airflow` (no Dagster, no platform, as in an Airflow image)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PLATFORM_VARIABLES, REPO_ROOT

AIRFLOW_VENV = REPO_ROOT / ".venv-airflow"
AIRFLOW_BIN = AIRFLOW_VENV / "bin"
DAGS_FOLDER = REPO_ROOT / "deploy" / "airflow" / "dags"
SETUP_SCRIPT = "tests/setup/airflow_venv.sh"


def require_airflow_venv() -> None:
    """The tests need Airflow's own venv; without it they fail (never skip), saying how to create it."""
    if not (AIRFLOW_BIN / "airflow").exists() or not (AIRFLOW_BIN / "python").exists():
        pytest.fail(
            f"{AIRFLOW_VENV} is missing: the Airflow DAG tests run Airflow 3 from its own venv. "
            f"Create it with `bash {SETUP_SCRIPT}` (`make test` runs it before pytest).",
            pytrace=False,
        )


def airflow_environment(home: Path, **extra: str) -> dict[str, str]:
    """A throwaway Airflow (SQLite in ``home``) over deploy/airflow/dags; nothing of the platform's settings
    (so MLPLATFORM_SCHEDULER is unset unless ``extra`` sets it)."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in PLATFORM_VARIABLES
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DAGSTER_URL")
        and not k.startswith(("AIRFLOW_", "AIRFLOW__", "MLPLATFORM_"))
    }
    return {
        **inherited,
        "PATH": f"{AIRFLOW_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        # `airflow dags test` waits out retry delays; the real retry settings are checked by the parse test.
        "MLPLATFORM_DAG_RETRIES": "0",
        **extra,
    }


@dataclass
class Completed:
    returncode: int
    output: str

    def tail(self, chars: int = 6000) -> str:
        return self.output[-chars:]


def run(args: list[str], env: dict[str, str], log: Path, timeout_s: float = 300) -> Completed:
    """Runs an Airflow venv command to completion; output (stdout and stderr) goes to ``log`` and is returned.

    `airflow dags test` ignores SIGTERM, so a command over its time is killed with its whole process group.
    """
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"{' '.join(args)} ran over {timeout_s} s:\n{log.read_text()[-6000:]}") from None
    return Completed(process.returncode, log.read_text(errors="replace"))


def airflow(*args: str, env: dict[str, str], log: Path, timeout_s: float = 300) -> Completed:
    return run([str(AIRFLOW_BIN / "airflow"), *args], env, log, timeout_s)


def airflow_python(script: str, env: dict[str, str], log: Path, timeout_s: float = 120) -> Completed:
    return run([str(AIRFLOW_BIN / "python"), "-c", script], env, log, timeout_s)
