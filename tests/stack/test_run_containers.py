"""Run containers started for real by the stack's run launcher (ServingAwareDockerRunLauncher with the
config of deploy/dagster/dagster.yaml, on the Docker Engine and the platform image that tests/setup/docker.sh
provides). A serving run may write the serving state volume. A monitoring run reads a gateway's shadow pair records
from it the way monitoring_report does, and can write nothing there.

The commands are short Python programs instead of Dagster runs: the mounts are what is tested, and a real run
would need the stack's stores. The test gets its own network and volumes, so a running stack keeps its own.
"""

from __future__ import annotations

import functools
import json
import uuid

import docker
import pytest
import yaml
from dagster import DagsterInstance, DagsterRun
from docker.errors import DockerException, ImageNotFound
from stack_compose import DEPLOY, SETUP_HINT, STANDIN_IMAGES

from mlplatform.serving import docker_backend
from mlplatform.serving.docker_backend import STATE_VOLUME, ServingAwareDockerRunLauncher

IMAGE = STANDIN_IMAGES["PLATFORM_IMAGE"]
GATEWAY = "mlflow-serve-iris-production"

# What a gateway's shadow sender does (PairRecords), done by a serving run: it has the volume read-write. An
# unwritable record would be dropped silently, so here it ends the program instead.
SERVING_RUN = f"""
import os, sys
from pathlib import Path
from mlplatform.serving.shadow import Mirrored, PairRecords
folder = Path({STATE_VOLUME!r}) / {GATEWAY!r}
folder.mkdir()
pairs = PairRecords("iris", "Production", folder, counted=lambda record: None, dropped=sys.exit)
asked = Mirrored("http://shadow:8080/invocations", "challenger", "2", "1", b"{{}}", "application/json", b"", 0.002)
pairs.record(asked, 0.004, 200, None, True)
pairs.close()
assert os.access("/var/run/docker.sock", os.R_OK | os.W_OK), "the serving run cannot use the Docker socket"
"""

# What monitoring_report does with the serving state: the Docker serving resource's folder, ingested into app-db
# (SQLite here). Then it tries to write there.
MONITORING_RUN = """
import json, os
from sqlalchemy import create_engine
from mlplatform.appdb.migrations import upgrade
from mlplatform.appdb.shadow_pairs import ingest_shadow_pairs, shadow_summary
from mlplatform.resources.serving import DockerServing
serving = DockerServing(home="/var/lib/mlplatform/home", tracking_uri="http://mlflow:5000", models="*",
                        image="unused", network="unused")
folder = serving.open().state.folder
engine = create_engine("sqlite:////tmp/app.db")
upgrade(engine)
seen = {"folder": str(folder), "ingested": ingest_shadow_pairs(engine, folder),
        "summary": shadow_summary(engine, "iris"), "socket": os.path.exists("/var/run/docker.sock")}
try:
    (folder / "written-by-monitoring").touch()
    seen["write"] = "written"
except OSError as error:
    seen["write"] = error.strerror
print(json.dumps(seen))
"""


@pytest.fixture
def run_container(monkeypatch):
    """Runs Python code in the container the launcher starts for a run of a given job: the launcher as dagster.yaml
    configures it, its named volumes and its network renamed for this test."""
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as error:
        raise AssertionError(f"the Docker Engine does not answer: {SETUP_HINT}\n{error}") from None
    try:
        client.images.get(IMAGE)
    except ImageNotFound:
        raise AssertionError(f"image {IMAGE} is missing: {SETUP_HINT} (it builds the images)") from None
    prefix = f"mlplatform-test-{uuid.uuid4().hex[:8]}"
    config = yaml.safe_load((DEPLOY / "dagster" / "dagster.yaml").read_text())["run_launcher"]["config"]
    kwargs = config["container_kwargs"]
    kwargs["volumes"] = [f"{prefix}-{volume}" for volume in kwargs["volumes"]]  # <prefix>-mlplatform-serving:...
    state_volume = f"{prefix}-mlplatform-serving"
    assert any(volume.startswith(f"{state_volume}:") for volume in kwargs["volumes"])
    serving_kwargs = functools.partial(docker_backend.serving_run_kwargs, state_volume=state_volume)
    monkeypatch.setattr(docker_backend, "serving_run_kwargs", serving_kwargs)
    instance = DagsterInstance.ephemeral()
    launcher = ServingAwareDockerRunLauncher(image=IMAGE, network=prefix, container_kwargs=kwargs)
    launcher.register_instance(instance)

    def run(job: str, code: str) -> str:
        """``code``'s output, once it exited 0."""
        dagster_run = instance.add_run(DagsterRun(job_name=job, run_id=str(uuid.uuid4())))
        launcher._launch_container_with_command(dagster_run, IMAGE, ["python", "-c", code])  # launch_run's own path
        container = client.containers.get(instance.get_run_by_id(dagster_run.run_id).tags["docker/container_id"])
        status = container.wait(timeout=120)["StatusCode"]
        output = container.logs().decode(errors="replace")
        assert status == 0, f"the {job} container exited {status}:\n{output[-3000:]}"
        return output

    network = client.networks.create(prefix)
    try:
        yield run
    finally:
        for container in client.containers.list(all=True, filters={"network": prefix}):
            container.remove(force=True)
        network.remove()
        for volume in client.volumes.list(filters={"name": prefix}):
            volume.remove(force=True)


def test_a_monitoring_run_reads_the_shadow_pairs_a_serving_run_may_write(run_container):
    run_container("serving_job", SERVING_RUN)
    seen = json.loads(run_container("monitoring_job", MONITORING_RUN).splitlines()[-1])
    assert seen["folder"] == STATE_VOLUME, seen  # where monitoring_report looks
    assert seen["ingested"] == 1 and seen["summary"]["shadow_pairs"] == 1, seen
    assert seen["summary"]["shadow_agreement_rate"] == 1.0, seen
    assert seen["write"] == "Read-only file system", seen
    assert seen["socket"] is False, "a monitoring run got the Docker socket"
