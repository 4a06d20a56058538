"""Each store failing with a password in its URL (a port nothing listens on): neither Dagster's event log nor the
raised message nor a command's output holds the password."""

from __future__ import annotations

import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from dagster import serialize_value

from mlplatform import dagster_home
from mlplatform.runner import JobFailed
from mlplatform.serving.processes import free_port
from mlplatform.settings import Settings

from conftest import Lifecycle, embedded_settings

PASSWORD = "pw-that-must-not-show"
MLPLATFORM = str(Path(sys.executable).parent / "mlplatform")


def _closed_port_url(scheme: str) -> str:
    return f"{scheme}://platform:{PASSWORD}@127.0.0.1:{free_port()}/store"


def _event_log(lifecycle: Lifecycle) -> str:
    runs = lifecycle.instance.get_runs()
    return "\n".join(serialize_value(entry) for run in runs for entry in lifecycle.instance.all_logs(run.run_id))


@pytest.mark.parametrize(
    ("variable", "scheme", "job", "named"),
    [
        ("APP_DB_URI", "postgresql", "data_load_job", "psycopg.OperationalError"),
        ("MLFLOW_TRACKING_URI", "http", "training_job", "MLflow tracking server at http://platform:***@127.0.0.1:"),
    ],
)
def test_a_failing_store_leaves_no_password_in_dagster(variable, scheme, job, named, tmp_path, migrated_mlflow_store):
    lifecycle = Lifecycle(
        embedded_settings(tmp_path / "home", migrated_mlflow_store, **{variable: _closed_port_url(scheme)})
    )
    try:
        if job != "data_load_job":
            lifecycle.load("iris")
        with pytest.raises(JobFailed) as failed:
            lifecycle.run(job, "iris")
        assert named in str(failed.value) and PASSWORD not in str(failed.value)
        events = _event_log(lifecycle)
        assert "STEP_FAILURE" in events and PASSWORD not in events
    finally:
        lifecycle.instance.dispose()


def test_dagster_storage_on_a_closed_port_fails_without_the_password(tmp_path):
    settings = Settings.from_mapping(
        {"MLPLATFORM_HOME": str(tmp_path / "home"), "DAGSTER_POSTGRES_URL": _closed_port_url("postgresql")}
    )
    with pytest.raises(Exception) as failed:
        dagster_home.instance(settings).get_runs()
    text = "".join(traceback.format_exception(failed.value))
    assert "too many retries for DB connection" in text and PASSWORD not in text


def test_the_tracking_server_never_prints_its_store_password_or_s3_secret(mlflow_stack, tmp_path):
    """MLflow's metadata store on a closed port, then a wrong S3 secret: each stops the server with a message."""
    outputs = []
    for variable, value in (
        ("MLFLOW_POSTGRES_URI", _closed_port_url("postgresql")),
        ("AWS_SECRET_ACCESS_KEY", PASSWORD),
    ):
        env = {**mlflow_stack.server_env, variable: value, "PATH": str(Path(sys.executable).parent)}
        result = subprocess.run(
            [MLPLATFORM, "tracking-server", "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode != 0
        outputs.append(result.stdout + result.stderr)
    assert "connection to server at" in outputs[0] and "credentials were rejected" in outputs[1]
    assert not [o for o in outputs if PASSWORD in o]
