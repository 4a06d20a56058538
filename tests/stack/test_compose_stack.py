"""The production stack, run for real: deploy/docker-compose.yml brought up with the project's images and the
local stand-ins (tests/setup/docker.sh builds them), then the lifecycle through the stack's own endpoints:

- a Dagster run launched over GraphQL runs in its own container (DockerRunLauncher);
- the MLflow run it makes stores its artifacts in the S3 store (SeaweedFS), through the tracking server's proxy;
- the alias sensor starts a serving container for the new Production version, reachable through its gateway;
- Prometheus' targets follow the gateway; moving Production to another version switches the gateway while a
  client keeps sending requests, and none fails;
- an Airflow DAG (`dag_training`) drives a Dagster run to success.

Teardown removes every container, network and volume the stack made (`docker-compose down -v`), also on failure.
Grafana, Loki and Alloy (profile `observability`) cannot run here: test_compose_offline.py checks them.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from stack_compose import SETUP_HINT, STANDIN_IMAGES, compose_command, docker, env_values, write_env

from processes import free_port

PROJECT = "mlplatformtest"
NETWORK = "mlplatform"
LOCATION = {"repositoryLocationName": "mlplatform", "repositoryName": "__repository__"}
SERVICES = [
    "postgres", "seaweedfs", "mlflow", "dagster-code", "dagster-webserver", "dagster-daemon", "mlplatform-exporter",
    "prometheus", "blackbox-exporter", "airflow-webserver", "airflow-scheduler", "airflow-dag-processor",
]  # fmt: skip
MODEL, ALIAS = "mlplatform_iris", "Production"


def _run(command: list[str], timeout: float = 600, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


class Stack:
    def __init__(self, env_file: Path) -> None:
        self.env_file = env_file
        self.env = env_values(env_file)
        self.base = compose_command(env_file, PROJECT)
        self.dagster = f"http://127.0.0.1:{self.env['DAGSTER_PORT']}"
        self.prometheus = f"http://127.0.0.1:{self.env['PROMETHEUS_PORT']}"

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        return _run([*self.base, *args], timeout=timeout, check=check)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def python(self, service: str, code: str, timeout: float = 300) -> str:
        """Python in a running service's container: traffic between containers stays on the stack's network."""
        return self.compose("exec", "-T", service, "python3", "-c", code, timeout=timeout).stdout

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", "--tail=60", *services, check=False).stdout[-8000:]

    def wait_healthy(self, services: list[str], deadline_s: float = 900) -> None:
        deadline = time.monotonic() + deadline_s
        pending = list(services)
        while pending:
            service = pending[0]
            container = self.container(service)
            status = _run(
                [docker(), "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                 container], check=False,
            ).stdout.split() if container else ["missing"]  # fmt: skip
            if status[-1:] == ["healthy"]:
                pending.pop(0)
                continue
            if status[:1] in (["exited"], ["dead"]) or time.monotonic() > deadline:
                raise AssertionError(f"{service} is {' '.join(status)}, not healthy:\n{self.logs(service)}")
            time.sleep(1)  # a state poll: Docker's healthcheck decides, this only reads it

    def graphql(self, query: str, **variables) -> dict:
        request = urllib.request.Request(
            f"{self.dagster}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def launch(self, job: str, dataset: str, run_config: dict | None = None) -> str:
        query = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
          ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""
        params = {
            "selector": {**LOCATION, "jobName": job},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": dataset}]},
            "runConfigData": run_config or {},
        }
        result = self.graphql(query, p=params)["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict:
        query = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status jobName
          tags { key value } } } }"""
        run = self.graphql(query, id=run_id)["runOrError"]
        run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        return run

    def wait_run(self, run_id: str, deadline_s: float = 900) -> dict:
        deadline = time.monotonic() + deadline_s
        while True:
            run = self.run(run_id)
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
                break
            time.sleep(2)  # a state poll of the run, not a wait for time to pass
        if run["status"] != "SUCCESS":
            query = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
              ... on MessageEvent { message } } } } }"""
            events = self.graphql(query, id=run_id)["logsForRun"].get("events", [])
            messages = "\n".join(e.get("message", "") for e in events if e)[-6000:]
            raise AssertionError(f"run {run_id} ({run['jobName']}) ended {run['status']}:\n{messages}\n"
                                 f"{self.logs('dagster-daemon')}")  # fmt: skip
        return run


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    try:
        _run([docker(), "info"], timeout=60)
    except (AssertionError, FileNotFoundError) as error:
        raise AssertionError(f"the Docker Engine does not answer: {SETUP_HINT}\n{error}") from None
    for image in STANDIN_IMAGES.values():
        found = _run([docker(), "image", "inspect", image], check=False)
        assert found.returncode == 0, f"image {image} is missing: {SETUP_HINT} (it builds the images)"
    ports = {name: str(free_port()) for name in ("MLFLOW_PORT", "DAGSTER_PORT", "AIRFLOW_WEB_PORT", "PROMETHEUS_PORT")}
    env_file = write_env(
        tmp_path_factory.mktemp("stack") / ".env",
        **STANDIN_IMAGES,
        **ports,
        MLFLOW_SERVE_POLL_SECONDS="5",
    )
    stack = Stack(env_file)
    _teardown(stack)  # a stack a killed run left behind
    try:
        stack.compose("up", "-d", *SERVICES, timeout=1200)
        stack.wait_healthy(SERVICES)
        yield stack
    finally:
        _teardown(stack)


def _teardown(stack: Stack) -> None:
    """Serving and run containers are started by the platform, not by compose: remove them first (they hold the
    network and the volumes), then everything compose made."""
    for label in ("mlflow_serve=true", "dagster/run_id"):
        ids = _run([docker(), "ps", "-aq", "--filter", f"label={label}", "--filter", f"network={NETWORK}"],
                   check=False).stdout.split()  # fmt: skip
        if ids:
            _run([docker(), "rm", "-f", *ids], check=False)
    stack.compose("down", "-v", "--remove-orphans", "-t", "5", check=False, timeout=300)
    for volume in ("mlplatform-serving", "mlplatform-data"):
        _run([docker(), "volume", "rm", "-f", volume], check=False)


def test_the_lifecycle_runs_through_the_compose_stack(stack):
    # 1. Dagster: a dataset partition and a load, each run in its own container.
    query = """mutation($r: RepositorySelector!) { addDynamicPartition(repositorySelector: $r,
      partitionsDefName: "dataset", partitionKey: "iris") { __typename } }"""
    assert stack.graphql(query, r=LOCATION)["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    load = stack.wait_run(stack.launch("data_load_job", "iris"))
    container_id = load["tags"]["docker/container_id"]
    inspected = json.loads(_run([docker(), "inspect", container_id]).stdout)[0]
    assert inspected["Config"]["Labels"]["dagster/job_name"] == "data_load_job"
    assert inspected["Config"]["Image"] == STANDIN_IMAGES["PLATFORM_IMAGE"]
    assert NETWORK in inspected["NetworkSettings"]["Networks"]
    assert not any("docker.sock" in m["Source"] for m in inspected["Mounts"]), "a data run got the Docker socket"

    # 2. Training in its own container: MLflow registers v1, the gate makes it Production, artifacts in S3.
    training = stack.wait_run(stack.launch("training_job", "iris"))
    assert training["tags"]["docker/container_id"] != container_id
    objects = json.loads(
        stack.python(
            "mlflow",
            "import boto3, json, os\n"
            "s3 = boto3.client('s3', endpoint_url=os.environ['MLFLOW_S3_ENDPOINT_URL'])\n"
            "keys = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate("
            "Bucket=os.environ['S3_ARTIFACT_BUCKET']) for o in p.get('Contents', [])]\n"
            "print(json.dumps(keys))",
        )
    )
    assert any(key.endswith("/MLmodel") for key in objects), objects[:20]
    assert any("data_contract/sample_input.csv" in key for key in objects), objects[:20]
    anonymous = stack.python(
        "mlflow",
        "import urllib.request, urllib.error, os\n"
        "try:\n urllib.request.urlopen('http://seaweedfs:9000/' + os.environ['S3_ARTIFACT_BUCKET'] + '/'); print(200)\n"
        "except urllib.error.HTTPError as e: print(e.code)",
    )
    assert anonymous.strip() in ("401", "403"), f"the artifact bucket answers anonymous reads: {anonymous}"

    # 3. The alias sensor starts the Production version in a serving container behind its gateway.
    from mlplatform.serving.naming import server_name

    gateway = server_name(MODEL, ALIAS)
    answer = _client(stack, gateway, until_version="1", requests=5)
    assert answer["failed"] == 0 and answer["versions"] == {"1": answer["ok"]}, answer
    serving = json.loads(_run([docker(), "inspect", f"{gateway}-v1"]).stdout)[0]
    assert serving["Config"]["Labels"]["mlflow_serve"] == "true"
    assert not serving["HostConfig"]["PortBindings"], "serving containers publish no port"
    _wait_target(stack, version="1")

    # 4. Airflow: dag_training drives a Dagster training run (v2, challenger) to success.
    run_id = _airflow_dag_training(stack)
    assert run_id

    # 5. Production -> v2 while a client keeps asking: no request fails, the gateway now answers with v2.
    client = _client_process(stack, gateway, until_version="2")
    assert client.stdout is not None
    started = client.stdout.readline()
    assert started.startswith("started"), started + (client.stderr.read() if client.stderr else "")
    stack.compose("exec", "-T", "dagster-code", "mlplatform", "alias", "set", MODEL, ALIAS, "2")
    out, err = client.communicate(timeout=900)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["failed"] == 0, summary
    assert summary["versions"].get("1", 0) > 0 and summary["versions"].get("2", 0) > 0, summary
    _wait_target(stack, version="2")
    # The exporter reads the serving state too: Model Quality's "served" panel shows the version the gateway routes to.
    _wait_served_version(stack, version=2)


CLIENT = """
import csv, io, json, sys, time, urllib.request, urllib.error
from mlflow import MlflowClient
gateway, until, limit, model, alias = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
client = MlflowClient()
version = client.get_model_version_by_alias(model, alias)
path = client.download_artifacts(version.run_id, "data_contract/sample_input.csv", "/tmp")
rows = list(csv.reader(open(path)))
body = json.dumps({"dataframe_split": {"columns": rows[0], "data": [[float(v) for v in r] for r in rows[1:6]]}})
url = f"http://{gateway}:8000/invocations"
def ask():
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("X-Model-Version")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Model-Version")
    except OSError as error:
        return str(error), None
deadline = time.monotonic() + 600
# Before the first answer the gateway may not exist yet: wait for it (not counted).
while ask()[0] != 200:
    if time.monotonic() > deadline:
        print(json.dumps({"failed": -1, "ok": 0, "versions": {}, "error": "the gateway never answered"})); sys.exit()
    time.sleep(1)
print("started", flush=True)
ok, failed, versions, after = 0, 0, {}, 0
for _ in range(limit):
    status, answered = ask()
    if status == 200:
        ok += 1
        versions[answered] = versions.get(answered, 0) + 1
        after = after + 1 if answered == until else 0
        if after >= 20:
            break
    else:
        failed += 1
        print(json.dumps({"status": status, "version": answered}), file=sys.stderr)
    if time.monotonic() > deadline:
        break
print(json.dumps({"ok": ok, "failed": failed, "versions": versions}))
"""


def _client_process(stack: Stack, gateway: str, until_version: str, requests: int = 20000) -> subprocess.Popen:
    command = [
        *stack.base,
        "exec",
        "-T",
        "dagster-code",
        "python3",
        "-c",
        CLIENT,
        gateway,
        until_version,
        str(requests),
        MODEL,
        ALIAS,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _client(stack: Stack, gateway: str, until_version: str, requests: int) -> dict:
    process = _client_process(stack, gateway, until_version, requests)
    out, err = process.communicate(timeout=900)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"client: {out}\n{err}\n{stack.logs('dagster-daemon')}"
    return json.loads(lines[-1])


def _wait_target(stack: Stack, version: str, deadline_s: float = 180) -> None:
    """Prometheus' blackbox-mlflow-serve target for the gateway carries the served version and is up."""
    deadline = time.monotonic() + deadline_s
    seen: list = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{stack.prometheus}/api/v1/targets?state=active", timeout=10) as response:
            targets = json.loads(response.read())["data"]["activeTargets"]
        seen = [t for t in targets if t["labels"].get("job") == "blackbox-mlflow-serve"]
        if any(t["labels"].get("version") == version and t["health"] == "up" for t in seen):
            return
        time.sleep(2)  # Prometheus re-reads targets.json and scrapes on its own intervals
    raise AssertionError(f"no up target of version {version}: {seen}")


def _wait_served_version(stack: Stack, version: int, deadline_s: float = 180) -> None:
    """Prometheus has scraped ``mlplatform_served_version`` of the gateway from the platform exporter."""
    query = urllib.parse.urlencode({"query": f'mlplatform_served_version{{model="{MODEL}",alias="{ALIAS}"}}'})
    deadline = time.monotonic() + deadline_s
    seen: list = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{stack.prometheus}/api/v1/query?{query}", timeout=10) as response:
            seen = json.loads(response.read())["data"]["result"]
        if [float(r["value"][1]) for r in seen] == [version]:
            return
        time.sleep(2)  # the exporter is scraped on Prometheus' own interval
    raise AssertionError(f"mlplatform_served_version is not {version}: {seen}")


def _airflow_dag_training(stack: Stack) -> str:
    """Trigger dag_training in the stack's Airflow (its CLI in the scheduler's container) and wait for success."""
    conf = json.dumps({"dataset": "iris", "seed": 7})
    deadline = time.monotonic() + 600
    while True:  # the DAG exists once the dag-processor has parsed the folder
        triggered = stack.compose("exec", "-T", "airflow-scheduler", "airflow", "dags", "trigger", "dag_training",
                                  "--conf", conf, "-o", "json", check=False)  # fmt: skip
        if triggered.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"dag_training cannot be triggered:\n{triggered.stderr[-3000:]}\n"
                                 f"{stack.logs('airflow-dag-processor')}")  # fmt: skip
        time.sleep(3)
    [run] = _json_rows(triggered.stdout)
    run_id = run["dag_run_id"]
    while True:
        listed = stack.compose("exec", "-T", "airflow-scheduler", "airflow", "dags", "list-runs", "dag_training",
                               "-o", "json")  # fmt: skip
        runs = {r["run_id"]: r for r in _json_rows(listed.stdout)}
        state = runs.get(run_id, {}).get("state")
        if state in ("success", "failed") or time.monotonic() > deadline + 900:
            break
        time.sleep(5)  # a state poll of the DAG run
    assert state == "success", f"dag_training ended {state}:\n{stack.logs('airflow-scheduler', 'dagster-daemon')}"
    query = """{ runsOrError(filter: {tags: [{key: "dagster-airlift/airflow-dag-id", value: "dag_training"}]}) {
      ... on Runs { results { runId status jobName } } } }"""
    runs_in_dagster = stack.graphql(query)["runsOrError"]["results"]
    assert [r["status"] for r in runs_in_dagster] == ["SUCCESS"], runs_in_dagster
    assert runs_in_dagster[0]["jobName"] == "training_job"
    return run_id


def _json_rows(output: str) -> list[dict]:
    """The JSON list an `airflow ... -o json` command printed, after whatever log lines came before it."""
    rows = [line for line in output.splitlines() if line.startswith("[{") or line.strip() == "[]"]
    assert rows, f"no JSON list in the output of airflow:\n{output[-3000:]}"
    return json.loads(rows[-1])
