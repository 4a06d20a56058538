"""Stores a test may stop and start: an S3 server (SeaweedFS) behind a real MLflow tracking server on PostgreSQL
(the ``mlflow_stack`` session fixture of tests/conftest.py); a test that stops one starts it again."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from postgres import fresh_database
from processes import Server, seaweedfs_server, tracking_server_process

ACCESS_KEY, SECRET_KEY, BUCKET = "mlplatform-faults", "s3-secret-for-fault-tests", "mlflow-artifacts"
TRACKING_PASSWORD = "tracking-pass-for-fault-tests"  # MLflow's basic auth in the URL; the server does not check it


@dataclass
class MlflowStack:
    s3: Server
    tracking: Server
    server_env: dict

    def tracking_uri(self, user: str = "platform") -> str:
        """The tracking server's URL with a user and password in it, as a deployment with basic auth has."""
        return self.tracking.url.replace("http://", f"http://{user}:{TRACKING_PASSWORD}@")


@contextmanager
def running_stack(postgres_admin: str, work: Path):
    with (
        seaweedfs_server(work / "s3", ACCESS_KEY, SECRET_KEY) as s3,
        fresh_database(postgres_admin, "mlp_faults_mlflow") as mlflow_db,
    ):
        server_env = {
            "MLFLOW_POSTGRES_URI": mlflow_db,
            "S3_ARTIFACT_BUCKET": BUCKET,
            "MLFLOW_S3_ENDPOINT_URL": s3.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        with tracking_server_process(work / "mlflow-server.log", server_env) as tracking:
            yield MlflowStack(s3, tracking, server_env)
