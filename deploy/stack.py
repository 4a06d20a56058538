"""`make stack-up` waits with `python3 deploy/stack.py wait`; `make stack-smoke` runs `... smoke`.

Standard library only (runs with any python3). Everything goes through the stack's own endpoints: Docker's health
states, Dagster's GraphQL API (published on 127.0.0.1:$DAGSTER_PORT), MLflow's REST API (127.0.0.1:$MLFLOW_PORT)
and the model's gateway on the stack's network (asked from inside the dagster-code container: serving containers
publish no port).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
LOCATION = {"repositoryLocationName": "mlplatform", "repositoryName": "__repository__"}


def compose(env_file: Path, *args: str, check: bool = True) -> str:
    command = ["docker-compose", "--project-directory", str(DEPLOY), "-f", str(DEPLOY / "docker-compose.yml")]
    result = subprocess.run([*command, "--env-file", str(env_file), *args], capture_output=True, text=True)
    if check and result.returncode:
        sys.exit(f"docker-compose {' '.join(args)}: {result.stderr[-2000:]}")
    return result.stdout


def env_values(env_file: Path) -> dict[str, str]:
    lines = [line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and line[0] != "#"]
    return {name: value for name, value in lines}


def wait(env_file: Path, deadline_s: float) -> None:
    """Every running service of the stack healthy (the one-shot airflow-init exited 0)."""
    deadline = time.monotonic() + deadline_s
    while True:
        ids = compose(env_file, "ps", "-q").split()
        states = {}
        for container in ids:
            name, state, health = subprocess.run(
                ["docker", "inspect", "-f", "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}"
                 "{{else}}none{{end}}", container], capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            states[name.lstrip("/")] = health if health != "none" else state
        waiting = {n: s for n, s in states.items() if s not in ("healthy", "exited")}
        if ids and not waiting:
            print(f"stack healthy: {len(states)} containers")
            return
        if time.monotonic() > deadline:
            sys.exit(f"not healthy after {deadline_s:.0f} s: {waiting}")
        time.sleep(2)  # reads Docker's health states; the healthchecks decide


def graphql(url: str, query: str, **variables) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    if payload.get("errors"):
        sys.exit(f"Dagster GraphQL: {payload['errors']}")
    return payload["data"]


def run_job(url: str, job: str, dataset: str) -> None:
    launch = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
      ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""
    params = {"selector": {**LOCATION, "jobName": job},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": dataset}]}}  # fmt: skip
    result = graphql(url, launch, p=params)["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        sys.exit(f"{job}: {result}")
    run_id = result["run"]["runId"]
    print(f"{job} for {dataset}: run {run_id} ({url}/runs/{run_id})")
    status = "QUEUED"
    while status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(2)  # polls the run's state
        status = graphql(url, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", id=run_id)[
            "runOrError"
        ]["status"]
    if status != "SUCCESS":
        sys.exit(f"{job}: {status}, see {url}/runs/{run_id}")


def smoke(env_file: Path, dataset: str) -> None:
    env = env_values(env_file)
    dagster = f"http://127.0.0.1:{env.get('DAGSTER_PORT', '3000')}"
    mlflow = f"http://127.0.0.1:{env.get('MLFLOW_PORT', '5000')}"
    model = f"{env.get('MLFLOW_MODEL_NAME', 'mlplatform')}_{dataset}"
    alias = env.get("MLFLOW_MODEL_ALIAS", "Production")
    add = """mutation($r: RepositorySelector!, $k: String!) { addDynamicPartition(repositorySelector: $r,
      partitionsDefName: "dataset", partitionKey: $k) { __typename } }"""
    graphql(dagster, add, r=LOCATION, k=dataset)
    run_job(dagster, "data_load_job", dataset)
    run_job(dagster, "training_job", dataset)
    query = urllib.parse.urlencode({"name": model, "alias": alias})
    with urllib.request.urlopen(f"{mlflow}/api/2.0/mlflow/registered-models/alias?{query}", timeout=30) as response:
        version = json.loads(response.read())["model_version"]["version"]
    print(f"MLflow: {model}@{alias} is version {version}")
    ask = (
        "import csv, json, sys, time, urllib.request\n"
        "from mlflow import MlflowClient\n"
        "from mlplatform.serving.naming import server_name\n"
        "model, alias = sys.argv[1], sys.argv[2]\n"
        "c = MlflowClient(); v = c.get_model_version_by_alias(model, alias)\n"
        "rows = list(csv.reader(open(c.download_artifacts(v.run_id, 'data_contract/sample_input.csv', '/tmp'))))\n"
        "body = json.dumps({'dataframe_split': {'columns': rows[0], 'data': rows[1:4]}}).encode()\n"
        "url = f'http://{server_name(model, alias)}:8000/invocations'\n"
        "deadline = time.monotonic() + 600\n"
        "while True:\n"
        "    try:\n"
        "        r = urllib.request.urlopen(urllib.request.Request(url, body, {'Content-Type': 'application/json'}))\n"
        "        print(url, 'version', r.headers['X-Model-Version'], r.read().decode()[:200]); break\n"
        "    except OSError as error:\n"
        "        if time.monotonic() > deadline: sys.exit(f'{url}: {error}')\n"
        "        time.sleep(2)\n"
    )
    print(compose(env_file, "exec", "-T", "dagster-code", "python3", "-c", ask, model, alias).strip())
    print("stack smoke: OK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["wait", "smoke"])
    parser.add_argument("--env", type=Path, default=DEPLOY / ".env")
    parser.add_argument("--dataset", default="iris")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    if args.command == "wait":
        wait(args.env, args.timeout)
    else:
        smoke(args.env, args.dataset)


if __name__ == "__main__":
    main()
