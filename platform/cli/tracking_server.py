"""``mlplatform tracking-server``: MLflow's tracking server on PostgreSQL with proxied S3 artifacts.

Clients reach metadata and artifacts only through ``MLFLOW_TRACKING_URI``; S3 credentials stay with the server.
The store's URL (with its password) reaches the server through its environment (``MLFLOW_BACKEND_STORE_URI``),
never its command line, which every user of the host can read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlplatform.artifact_store import ensure_private_bucket

REQUIRED = (
    "MLFLOW_POSTGRES_URI",
    "S3_ARTIFACT_BUCKET",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


def server_command(host: str, port: int, workers: int) -> list[str]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"mlplatform tracking-server: set {', '.join(missing)}")
    return [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--artifacts-destination",
        f"s3://{os.environ['S3_ARTIFACT_BUCKET']}/mlflow",
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def run_tracking_server(host: str, port: int, workers: int) -> None:
    command = server_command(host, port, workers)
    bucket = os.environ["S3_ARTIFACT_BUCKET"]
    created = ensure_private_bucket(os.environ["MLFLOW_S3_ENDPOINT_URL"], bucket)
    print(f"artifact bucket {bucket}: {'created' if created else 'exists'}, private", file=sys.stderr)
    os.execve(command[0], command, {**os.environ, "MLFLOW_BACKEND_STORE_URI": os.environ["MLFLOW_POSTGRES_URI"]})
