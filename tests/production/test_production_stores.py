"""The production configuration for real: PostgreSQL for app-db, MLflow and Dagster; S3 artifacts behind an
`mlflow server`; all started here (SeaweedFS as the S3 server), the demo run over them, every store inspected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import psycopg
import pytest

from conftest import PLATFORM_VARIABLES
from postgres import fresh_database
from processes import seaweedfs, tracking_server

ACCESS_KEY, SECRET_KEY, BUCKET = "mlplatform-test", "s3-secret-for-tests", "mlflow-artifacts"


@pytest.fixture(scope="module")
def production_stack(postgres_admin, tmp_path_factory):
    work = tmp_path_factory.mktemp("stack")
    with (
        seaweedfs(work / "s3", ACCESS_KEY, SECRET_KEY) as s3,
        fresh_database(postgres_admin, "mlp_app") as app_db,
        fresh_database(postgres_admin, "mlp_mlflow") as mlflow_db,
        fresh_database(postgres_admin, "mlp_dagster") as dagster_db,
    ):
        server_env = {
            "MLFLOW_POSTGRES_URI": mlflow_db,
            "S3_ARTIFACT_BUCKET": BUCKET,
            "MLFLOW_S3_ENDPOINT_URL": s3,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        with tracking_server(work / "mlflow-server.log", server_env) as tracking_uri:
            yield {
                "s3": s3,
                "app_db": app_db,
                "mlflow_db": mlflow_db,
                "dagster_db": dagster_db,
                "tracking_uri": tracking_uri,
                "server_env": server_env,
                "work": work,
            }


def _platform_env(stack: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES and not k.startswith("AWS_")}
    # The platform reaches MLflow only through MLFLOW_TRACKING_URI: no S3 credentials on this side.
    return {
        **env,
        "APP_DB_URI": stack["app_db"],
        "MLFLOW_TRACKING_URI": stack["tracking_uri"],
        "DAGSTER_POSTGRES_URL": stack["dagster_db"],
    }


def _s3():
    return boto3.client(
        "s3", endpoint_url=None, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
    )


def test_demo_on_postgresql_and_s3_puts_everything_in_its_store(production_stack, tmp_path):
    stack = production_stack
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlplatform"), "demo", "--home", str(tmp_path), "--json"],
        env=_platform_env(stack),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert summary["serving"]["invocation_ok"] is True
    assert summary["predictions"]["rows_written"] == summary["dataset"]["rows"] == 150

    with psycopg.connect(stack["app_db"]) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone()[0] == 150
        assert conn.execute("SELECT count(*) FROM ds_iris_v1").fetchone()[0] == 150
        assert conn.execute("SELECT max(version) FROM mlplatform_schema_version").fetchone()[0] >= 1
    with psycopg.connect(stack["dagster_db"]) as conn:
        runs = dict(conn.execute("SELECT pipeline_name, status FROM runs").fetchall())
    assert runs == {job: "SUCCESS" for job in ("data_load_job", "training_job", "inference_job", "monitoring_job")}
    with psycopg.connect(stack["mlflow_db"]) as conn:
        aliases = conn.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall()
    assert ("mlplatform_iris", "Production", 1) in aliases

    s3 = boto3.client(
        "s3",
        endpoint_url=stack["s3"],
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    assert any(k.endswith("/MLmodel") for k in keys)
    for artifact in (
        "data_contract/input_schema.json",
        "data_contract/sample_input.csv",
        "metrics/validation_metrics.json",
    ):
        assert any(k.endswith(artifact) for k in keys), artifact
    assert not (tmp_path / "mlartifacts").exists() or not any((tmp_path / "mlartifacts").rglob("MLmodel"))

    with pytest.raises(urllib.error.HTTPError) as anonymous:  # the bucket is private
        urllib.request.urlopen(f"{stack['s3']}/{BUCKET}/{keys[0]}", timeout=10)
    assert anonymous.value.code == 403


def test_the_store_url_is_on_no_command_line(production_stack):
    """`ps` shows every process's arguments to every user of the host: the MLflow store's URL (and its password)
    must not be among them, neither in the server nor in its workers."""
    url = production_stack["mlflow_db"]
    command_lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command_lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            continue
    assert any("mlflow" in c and "server" in c for c in command_lines), "the tracking server is not running"
    assert not [c for c in command_lines if url in c]


def test_wrong_s3_credentials_are_named(production_stack, tmp_path):
    env = {**os.environ, **production_stack["server_env"], "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlplatform"), "tracking-server", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "credentials were rejected" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr
    assert production_stack["s3"] in result.stderr and BUCKET in result.stderr


def test_unreachable_tracking_server_is_named(tmp_path, clean_environment):
    from processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    env = {**{k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}, "MLFLOW_TRACKING_URI": url}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlplatform"), "demo", "--home", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert f"MLflow tracking server at {url} (MLFLOW_TRACKING_URI) is unreachable" in result.stderr
