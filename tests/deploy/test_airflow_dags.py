"""The Airflow DAG wrappers on real Airflow 3.3 (its own venv) against a real Dagster webserver.

One `dagster dev` for the module (embedded storage in a temporary MLPLATFORM_HOME); each Airflow command is the
real CLI over deploy/airflow/dags with a throwaway SQLite AIRFLOW_HOME migrated once per session.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from string import Template

import pytest

from airflow_cli import AIRFLOW_BIN, DAGS_FOLDER, airflow, airflow_environment, airflow_python, require_airflow_venv
from conftest import PLATFORM_VARIABLES, REPO_ROOT
from processes import dagster_dev, free_port, graphql

EXPECTED = {
    "dag_data_predictions": ("@daily", {"mlplatform", "dagster", "data"}, "data_load_job"),
    "dag_training": ("@weekly", {"mlplatform", "dagster", "training"}, "training_job"),
    "dag_inference": ("@hourly", {"mlplatform", "dagster", "inference"}, "inference_job"),
    "dag_model_monitoring": ("@daily", {"mlplatform", "dagster", "monitoring"}, "monitoring_job"),
}
RUN_LINE = re.compile(r"Dagster run ([0-9a-f-]{36}): (\w+) for dataset '(\w+)': (http://[\w.:]+/runs/[0-9a-f-]{36})")
AIRLIFT_DAG_TAG = "dagster-airlift/airflow-dag-id"
REPOSITORY = '{repositoryLocationName: "mlplatform", repositoryName: "__repository__"}'

PARSE_SCRIPT = """
import json, os, warnings
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.serialization.serialized_objects import DagSerialization

folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bag = BundleDagBag(dag_folder=folder, bundle_path=folder)
ours = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
        if str(folder) in str(w.filename)]
dags = {}
for dag_id, dag in bag.dags.items():
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    [task] = dag.tasks
    dags[dag_id] = {
        "schedule": dag.schedule, "tags": sorted(dag.tags), "catchup": dag.catchup,
        "paused_upon_creation": dag.is_paused_upon_creation, "doc_md": dag.doc_md or "",
        "description": dag.description or "", "max_active_runs": dag.max_active_runs,
        "retries": task.retries, "retry_delay_s": task.retry_delay.total_seconds(),
        "execution_timeout_s": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        "operator": type(task).__name__, "job_name": task.job_name, "params": sorted(dag.params.keys()),
        "serialized_tasks": [t.task_id for t in restored.tasks],
    }
from importlib.util import find_spec
print("RESULT " + json.dumps({"import_errors": {str(k): v for k, v in bag.import_errors.items()},
                              "installed": [m for m in ("dagster", "mlplatform") if find_spec(m)],
                              "files": sorted(str(s.file) for s in bag.dagbag_stats), "warnings": ours,
                              "dags": dags}, default=str))
"""


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    """One migrated Airflow metadata database (SQLite) for the session."""
    require_airflow_venv()
    home = tmp_path_factory.mktemp("airflow-home")
    result = airflow("db", "migrate", env=airflow_environment(home), log=home / "db-migrate.log", timeout_s=180)
    assert result.returncode == 0, result.tail()
    return home


@pytest.fixture(scope="module")
def dagster(tmp_path_factory):
    """`dagster dev` over a fresh embedded platform home; yields (url, platform home)."""
    require_airflow_venv()
    root = tmp_path_factory.mktemp("dagster-for-airflow")
    home = root / "home"
    with pytest.MonkeyPatch.context() as patch:
        for name in PLATFORM_VARIABLES:
            patch.delenv(name, raising=False)
        # No aliases to serve: the alias sensor would start model servers that outlive this Dagster.
        env = {"MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "MLFLOW_SERVE_ALIASES": ""}
        with dagster_dev(REPO_ROOT, root / "dagster-dev.log", env) as url:
            _wait_for_code_location(url)
            yield url, home
    deadline = time.monotonic() + 15
    while (left := _processes_using(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], "processes outlived the test's Dagster"


def _processes_using(folder) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in command:
            found.append(f"{cmdline.parent.name}: {command[:200]}")
    return found


def _wait_for_code_location(url: str, timeout_s: float = 120) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = graphql(url, query)["workspaceOrError"]["locationEntries"]
        if entries and entries[0]["locationOrLoadError"]:
            assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
            return
        time.sleep(1)
    raise TimeoutError(f"the code location did not load at {url}")


def _dags_test(dag_id: str, airflow_home, log_dir, conf: dict | None = None, timeout_s: float = 300, **env: str):
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    environment = airflow_environment(airflow_home, **env)
    return airflow(*args, env=environment, log=log_dir / f"{dag_id}.log", timeout_s=timeout_s)


def _launched(output: str) -> list[tuple[str, str, str, str]]:
    """(run id, job, dataset, link) of each Dagster run the task log names (as it appears, again if it failed)."""
    return sorted(set(RUN_LINE.findall(output)))


def _graphql(url: str, query: str, **values) -> dict:
    """``graphql`` with ``$repository`` (the platform's) and ``$<name>`` (``values[name]`` as JSON) filled in."""
    literals = {name: json.dumps(value) for name, value in values.items()}
    return graphql(url, Template(query).substitute(repository=REPOSITORY, **literals))


def _run(url: str, run_id: str) -> dict:
    query = (
        "{ runOrError(runId: $run_id) { __typename ... on Run { status jobName runConfigYaml tags { key value } } } }"
    )
    run = _graphql(url, query, run_id=run_id)["runOrError"]
    assert run["__typename"] == "Run", run
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    return {"status": run["status"], "job": run["jobName"], "config": run["runConfigYaml"], "tags": tags}


def _partition(url: str, mutation: str, key: str) -> str:
    """Adds (``addDynamicPartition``) or deletes (``deleteDynamicPartitions``) a dataset partition in Dagster."""
    argument = "partitionKey: $key" if mutation == "addDynamicPartition" else "partitionKeys: [$key]"
    query = f'mutation {{ {mutation}(repositorySelector: $repository, partitionsDefName: "dataset", {argument}) '
    return _graphql(url, query + "{ __typename } }", key=key)[mutation]["__typename"]


def _assert_ran(result, url: str, dag_id: str, datasets: list[str]) -> dict[str, str]:
    """The Airflow run succeeded and each dataset's Dagster run of the DAG's job succeeded, tagged with the DAG,
    all from one Dagster backfill linked in the log."""
    assert result.returncode == 0, result.tail()
    [backfill] = re.findall(r"Dagster backfill (\w+): ", result.output)
    assert f"{url}/runs/b/{backfill}" in result.output
    job = EXPECTED[dag_id][2]
    launched = _launched(result.output)
    assert sorted(dataset for _, _, dataset, _ in launched) == sorted(datasets), result.tail()
    run_ids = {}
    for run_id, launched_job, dataset, link in launched:
        assert launched_job == job
        assert link == f"{url}/runs/{run_id}"
        run = _run(url, run_id)
        assert run["status"] == "SUCCESS", run
        assert run["job"] == job
        assert run["tags"]["dagster/partition"] == dataset
        assert run["tags"][AIRLIFT_DAG_TAG] == dag_id
        assert run["tags"]["dagster/backfill"] == backfill
        run_ids[dataset] = run_id
    return run_ids


def _parse(airflow_home, log: Path, **env: str) -> dict:
    """The DAG folder as Airflow's DAG processor parses it, with the DAGs' own retry settings."""
    environment = airflow_environment(airflow_home, **env)
    del environment["MLPLATFORM_DAG_RETRIES"]
    result = airflow_python(PARSE_SCRIPT, environment, log)
    assert result.returncode == 0, result.tail()
    [line] = [line for line in result.output.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_the_dag_folder_parses_on_airflow_3(airflow_home, tmp_path):
    parsed = _parse(airflow_home, tmp_path / "parse.log")
    assert parsed["import_errors"] == {}
    assert parsed["installed"] == []  # as in an Airflow image: no Dagster, no platform
    assert parsed["warnings"] == []
    # The helper package is listed in .airflowignore: only the four DAG files are parsed.
    assert sorted(parsed["files"]) == sorted(f"{dag_id}.py" for dag_id in EXPECTED)
    dags = parsed["dags"]
    assert set(dags) == set(EXPECTED)
    for dag_id, (_, tags, job) in EXPECTED.items():
        dag = dags[dag_id]
        assert dag["schedule"] is None, dag_id  # MLPLATFORM_SCHEDULER unset: Dagster schedules
        assert set(dag["tags"]) == tags, dag_id
        assert dag["catchup"] is False
        assert dag["paused_upon_creation"] is False
        assert dag["retries"] == 2 and dag["retry_delay_s"] == 300, dag_id
        assert dag["execution_timeout_s"] and dag["max_active_runs"] == 1
        assert job in dag["doc_md"] and "dagster_default" in dag["doc_md"] and dag["description"], dag_id
        assert "MLPLATFORM_SCHEDULER" in dag["doc_md"], dag_id
        assert dag["job_name"] == job
        assert dag["serialized_tasks"] and "dataset" in dag["params"]
    assert dags["dag_data_predictions"]["params"] == ["dataset", "source", "target"]
    assert dags["dag_training"]["params"] == ["dataset", "promotion_margin", "seed", "validation_fraction"]


def test_the_dag_schedules_follow_mlplatform_scheduler(airflow_home, tmp_path):
    """Airflow schedules only with MLPLATFORM_SCHEDULER=airflow (unset: Dagster does, see the parse test above)."""
    dags = _parse(airflow_home, tmp_path / "airflow.log", MLPLATFORM_SCHEDULER="airflow")["dags"]
    assert {dag_id: dag["schedule"] for dag_id, dag in dags.items()} == {
        dag_id: schedule for dag_id, (schedule, _, _) in EXPECTED.items()
    }
    assert {
        dag["schedule"]
        for dag in _parse(airflow_home, tmp_path / "dagster.log", MLPLATFORM_SCHEDULER="dagster")["dags"].values()
    } == {None}

    parsed = _parse(airflow_home, tmp_path / "bad.log", MLPLATFORM_SCHEDULER="cron")
    assert parsed["dags"] == {}
    assert sorted(Path(path).name for path in parsed["import_errors"]) == sorted(f"{d}.py" for d in EXPECTED)
    for error in parsed["import_errors"].values():
        assert "MLPLATFORM_SCHEDULER must be one of dagster, airflow; got 'cron'" in error


def test_the_dag_files_stay_thin():
    """No platform or Dagster import (the Airflow image has neither), Airflow 3 idioms, a bridge under 150 lines."""
    files = sorted(DAGS_FOLDER.rglob("*.py"))
    assert {f.name for f in files} >= {f"{dag_id}.py" for dag_id in EXPECTED}
    for path in files:
        source = path.read_text()
        for old in ("days_ago", "schedule_interval", "airflow.operators.python", "airflow.models import DAG"):
            assert old not in source, f"{path.name} uses {old}"
        modules = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module.split(".")[0])
        assert not modules & {"mlplatform", "dagster", "dagster_graphql"}, f"{path.name} imports {modules}"
    assert len((DAGS_FOLDER / "dagster_bridge" / "__init__.py").read_text().splitlines()) < 150


# The lifecycle as a user runs it, one `airflow dags test` per fixture: each step's time counts toward the first test
# that asks for it, so each test's time limit covers one step (every step waits for a Dagster backfill).
@pytest.fixture(scope="module")
def loaded(dagster, airflow_home, tmp_path_factory):
    url, _ = dagster
    logs = tmp_path_factory.mktemp("load")
    return _dags_test("dag_data_predictions", airflow_home, logs, {"dataset": "iris"}, DAGSTER_URL=url)


@pytest.fixture(scope="module")
def trained(dagster, loaded, airflow_home, tmp_path_factory):
    """The training's result, and the registry right after it (model versions with their Dagster runs, production)."""
    from mlflow.tracking import MlflowClient

    url, home = dagster
    logs = tmp_path_factory.mktemp("train")
    result = _dags_test("dag_training", airflow_home, logs, {"dataset": "iris", "seed": 0}, DAGSTER_URL=url)
    if result.returncode != 0:
        return result, {"versions": {}, "production": None}
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    versions = client.search_model_versions("name='mlplatform_iris'")
    return result, {
        "versions": {version.version: version.tags.get("dagster_run_id") for version in versions},
        "production": client.get_model_version_by_alias("mlplatform_iris", "Production").version,
    }


@pytest.fixture(scope="module")
def inferred(dagster, trained, airflow_home, tmp_path_factory):
    url, _ = dagster
    # No dataset in the config: every dataset partition Dagster has (here: iris), as a scheduled run does.
    return _dags_test("dag_inference", airflow_home, tmp_path_factory.mktemp("infer"), None, DAGSTER_URL=url)


@pytest.fixture(scope="module")
def monitored(dagster, inferred, airflow_home, tmp_path_factory):
    url, _ = dagster
    logs = tmp_path_factory.mktemp("monitor")
    return _dags_test("dag_model_monitoring", airflow_home, logs, {"dataset": "iris"}, DAGSTER_URL=url)


def test_dag_data_predictions_loads_the_dataset_in_dagster(dagster, loaded):
    url, _ = dagster
    _assert_ran(loaded, url, "dag_data_predictions", ["iris"])
    assert "added the dataset partition 'iris'" in loaded.output


def test_dag_training_registers_a_new_model_version(dagster, trained):
    url, _ = dagster
    result, registry = trained
    training_run = _assert_ran(result, url, "dag_training", ["iris"])["iris"]
    assert list(registry["versions"].values()) == [training_run]
    assert registry["production"] in registry["versions"]
    assert "seed: 0" in _run(url, training_run)["config"]  # the DAG's params reached Dagster as run config


def test_dag_inference_writes_predictions(dagster, inferred):
    url, home = dagster
    _assert_ran(inferred, url, "dag_inference", ["iris"])
    with sqlite3.connect(home / "app.db") as db:
        [(rows,)] = db.execute("SELECT count(*) FROM predictions WHERE model_name = 'mlplatform_iris'").fetchall()
    assert rows == 150


def test_dag_model_monitoring_reports(dagster, monitored):
    url, _ = dagster
    _assert_ran(monitored, url, "dag_model_monitoring", ["iris"])


def test_a_failed_dagster_run_fails_the_airflow_task_and_is_retried(dagster, monitored, airflow_home, tmp_path):
    """Scheduled-style dag_inference (no dataset: every partition) over iris and a partition with no model.

    The never-trained partition's Dagster run fails, so the Airflow task fails linking that run, and Airflow's retry
    launches the backfill again; iris succeeds both times.
    """
    url, _ = dagster
    assert _partition(url, "addDynamicPartition", "never_loaded") == "AddDynamicPartitionSuccess"
    host, port = url.removeprefix("http://").split(":")
    try:
        # The URL from the Airflow connection this time (AIRFLOW_CONN_*), not DAGSTER_URL.
        result = _dags_test(
            "dag_inference",
            airflow_home,
            tmp_path,
            None,
            timeout_s=600,  # two tries, each a backfill the Dagster daemon submits and closes (up to 30 s each)
            MLPLATFORM_DAG_RETRIES="1",
            MLPLATFORM_DAG_RETRY_DELAY_SECONDS="1",
            AIRFLOW_CONN_DAGSTER_DEFAULT=json.dumps({"conn_type": "http", "host": host, "port": int(port)}),
        )
    finally:
        _partition(url, "deleteDynamicPartitions", "never_loaded")
    assert result.returncode != 0, result.tail()
    assert (
        len(set(re.findall(r"Dagster backfill (\w+): inference_job for \['iris', 'never_loaded'\]", result.output)))
        == 2
    ), result.tail()
    launched = _launched(result.output)
    assert sorted(dataset for _, _, dataset, _ in launched) == ["iris", "iris", "never_loaded", "never_loaded"], (
        result.tail()
    )
    for run_id, _, dataset, link in launched:
        assert _run(url, run_id)["status"] == ("SUCCESS" if dataset == "iris" else "FAILURE")
        if dataset == "never_loaded":
            assert f"FAILURE: Dagster run {run_id}: inference_job for dataset 'never_loaded': {link}" in result.output
    assert len({_run(url, run_id)["tags"]["dagster-airlift/airflow-dag-run-id"] for run_id, *_ in launched}) == 1
    assert "DagRun failed" in result.output or "state=failed" in result.output


def test_an_unknown_dataset_fails_before_anything_runs(dagster, monitored, airflow_home, tmp_path):
    url, _ = dagster
    result = _dags_test("dag_inference", airflow_home, tmp_path, {"dataset": "no_such_dataset"}, DAGSTER_URL=url)
    assert result.returncode != 0, result.tail()
    assert (
        "AirflowFailException: unknown dataset 'no_such_dataset': Dagster has ['iris']; load it first" in result.output
    )
    assert _launched(result.output) == []


def test_an_unreachable_dagster_fails_the_task_naming_the_url(airflow_home, tmp_path):
    port = free_port()  # nothing listens there
    connection = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})
    result = _dags_test("dag_model_monitoring", airflow_home, tmp_path, None, AIRFLOW_CONN_DAGSTER_DEFAULT=connection)
    assert result.returncode != 0, result.tail()
    assert f"Dagster is unreachable at http://127.0.0.1:{port} (set the Airflow connection" in result.output, (
        result.tail()
    )


def test_a_canceled_dagster_run_fails_the_airflow_task(dagster, monitored, airflow_home, tmp_path):
    """A Dagster run canceled (e.g. from Dagster's UI) while Airflow waits for it fails the Airflow task, without
    Airflow retries; the new dataset's partition, added for the load, is removed again."""
    url, _ = dagster
    env = airflow_environment(
        airflow_home, DAGSTER_URL=url, MLPLATFORM_DAG_RETRIES="1", MLPLATFORM_DAG_RETRY_DELAY_SECONDS="1"
    )
    args = [str(AIRFLOW_BIN / "airflow"), "dags", "test", "dag_data_predictions", "--conf", '{"dataset": "wine"}']
    log = tmp_path / "canceled.log"
    runs = (
        "{ runsOrError(filter: {tags: [{key: $dag_tag, value: $dag_id}, {key: $partition_tag, value: $dataset}]}) "
        "{ ... on Runs { results { runId status } } } }"
    )
    wine = {
        "dag_tag": AIRLIFT_DAG_TAG,
        "dag_id": "dag_data_predictions",
        "partition_tag": "dagster/partition",
        "dataset": "wine",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        # Cancel it as soon as Dagster has it (a NOT_STARTED run cannot be terminated yet), before it can end.
        while True:
            found = _graphql(url, runs, **wine)["runsOrError"]["results"]
            if found and found[0]["status"] in ("QUEUED", "STARTING", "STARTED"):
                terminate = "mutation { terminateRun(runId: $run_id) { __typename } }"
                terminated = _graphql(url, terminate, run_id=found[0]["runId"])["terminateRun"]
                if terminated["__typename"] == "TerminateRunSuccess":
                    break
            assert process.poll() is None and time.monotonic() < deadline, (found, log.read_text()[-6000:])
            time.sleep(0.1)
        [run] = found
        returncode = process.wait(timeout=180)
        partitions = _graphql(
            url,
            '{ partitionSetOrError(repositorySelector: $repository, partitionSetName: "data_load_job_partition_set") '
            "{ ... on PartitionSet { partitionsOrError { ... on Partitions { results { name } } } } } }",
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _partition(url, "deleteDynamicPartitions", "wine")
    output = log.read_text()
    assert returncode != 0, output[-6000:]
    assert _run(url, run["runId"])["status"] == "CANCELED"
    assert [r["runId"] for r in _graphql(url, runs, **wine)["runsOrError"]["results"]] == [run["runId"]]  # no retry
    assert "removed the dataset partition 'wine' from Dagster again" in output, output[-6000:]
    assert "wine" not in json.dumps(partitions)
    line = f"CANCELED: Dagster run {run['runId']}: data_load_job for dataset 'wine': {url}/runs/{run['runId']}"
    assert line in output, output[-6000:]
