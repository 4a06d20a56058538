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

import pytest

from airflow_cli import AIRFLOW_BIN, DAGS_FOLDER, airflow, airflow_environment, airflow_python, require_airflow_venv
from conftest import PLATFORM_VARIABLES, REPO_ROOT
from processes import dagster_dev, graphql

from mlplatform.serving.local_process import free_port

EXPECTED = {
    "dag_data_predictions": ("@daily", {"mlplatform", "dagster", "data"}, "data_load_job"),
    "dag_training": ("@weekly", {"mlplatform", "dagster", "training"}, "training_job"),
    "dag_inference": ("@hourly", {"mlplatform", "dagster", "inference"}, "inference_job"),
    "dag_model_monitoring": ("@daily", {"mlplatform", "dagster", "monitoring"}, "monitoring_job"),
}
RUN_LINE = re.compile(r"Dagster run ([0-9a-f-]{36}): (\w+) for dataset '(\w+)': (\S+)")
AIRLIFT_DAG_TAG = "dagster-airlift/airflow-dag-id"

PARSE_SCRIPT = """
import json, warnings
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.serialization.serialized_objects import DagSerialization

folder = Path(%r)
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
""" % str(DAGS_FOLDER)


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


def _dags_test(dag_id: str, airflow_home, log_dir, conf: dict | None = None, **env: str):
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    return airflow(*args, env=airflow_environment(airflow_home, **env), log=log_dir / f"{dag_id}.log")


def _launched(output: str) -> list[tuple[str, str, str, str]]:
    return RUN_LINE.findall(output)


def _run(url: str, run_id: str) -> dict:
    query = '{ runOrError(runId: %s) { __typename ... on Run { status jobName tags { key value } } } }'
    run = graphql(url, query % json.dumps(run_id))["runOrError"]
    assert run["__typename"] == "Run", run
    return {"status": run["status"], "job": run["jobName"], "tags": {t["key"]: t["value"] for t in run["tags"]}}


def _repository_selector() -> str:
    return '{repositoryLocationName: "mlplatform", repositoryName: "__repository__"}'


def _assert_ran(result, url: str, dag_id: str, datasets: list[str]) -> dict[str, str]:
    """The Airflow run succeeded and each dataset's Dagster run of the DAG's job succeeded, tagged with the DAG."""
    assert result.returncode == 0, result.tail()
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
        assert f"Dagster run {run_id} ({job}, dataset '{dataset}') succeeded" in result.output
        run_ids[dataset] = run_id
    return run_ids


def test_the_dag_folder_parses_on_airflow_3(airflow_home, tmp_path):
    env = airflow_environment(airflow_home)
    del env["MLPLATFORM_DAG_RETRIES"]  # the DAGs' own retry settings
    result = airflow_python(PARSE_SCRIPT, env, tmp_path / "parse.log")
    assert result.returncode == 0, result.tail()
    [line] = [line for line in result.output.splitlines() if line.startswith("RESULT ")]
    parsed = json.loads(line.removeprefix("RESULT "))
    assert parsed["import_errors"] == {}
    assert parsed["installed"] == []  # as in an Airflow image: no Dagster, no platform
    assert parsed["warnings"] == []
    # The helper package is listed in .airflowignore: only the four DAG files are parsed.
    assert sorted(parsed["files"]) == sorted(f"{dag_id}.py" for dag_id in EXPECTED)
    dags = parsed["dags"]
    assert set(dags) == set(EXPECTED)
    for dag_id, (schedule, tags, job) in EXPECTED.items():
        dag = dags[dag_id]
        assert dag["schedule"] == schedule, dag_id
        assert set(dag["tags"]) == tags, dag_id
        assert dag["catchup"] is False
        assert dag["paused_upon_creation"] is False
        assert dag["retries"] == 2 and dag["retry_delay_s"] == 300, dag_id
        assert dag["execution_timeout_s"] and dag["max_active_runs"] == 1
        assert job in dag["doc_md"] and "dagster_default" in dag["doc_md"] and dag["description"], dag_id
        assert dag["job_name"] == job
        assert dag["serialized_tasks"] and "dataset" in dag["params"]
    assert dags["dag_data_predictions"]["params"] == ["dataset", "source", "target"]
    assert dags["dag_training"]["params"] == ["dataset", "promotion_margin", "seed", "validation_fraction"]


def test_the_dag_files_stay_thin_and_in_step_with_the_platform():
    """No platform or Dagster import (the Airflow image has neither), Airflow 3 idioms, the platform's names."""
    from mlplatform.assets.partitions import dataset_partitions
    from mlplatform.datasets.sources import BUILTIN, NAME_PATTERN

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

    bridge = ast.parse((DAGS_FOLDER / "dagster_bridge" / "__init__.py").read_text())
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in bridge.body if isinstance(node, ast.Assign)
        for target in node.targets if isinstance(target, ast.Name) and target.id in (
            "PARTITIONS_DEF_NAME", "DATASET_NAME_PATTERN", "BUILTIN_DATASETS")
    }
    assert constants == {
        "PARTITIONS_DEF_NAME": dataset_partitions.name,
        "DATASET_NAME_PATTERN": NAME_PATTERN.pattern,
        "BUILTIN_DATASETS": tuple(BUILTIN),
    }


@pytest.fixture(scope="module")
def lifecycle(dagster, airflow_home, tmp_path_factory):
    """`airflow dags test` of the four DAGs in lifecycle order against the module's Dagster, as a user runs them."""
    url, home = dagster
    logs = tmp_path_factory.mktemp("lifecycle-logs")
    results = {
        "dag_data_predictions": _dags_test("dag_data_predictions", airflow_home, logs, {"dataset": "iris"},
                                           DAGSTER_URL=url),
        "dag_training": _dags_test("dag_training", airflow_home, logs, {"dataset": "iris", "seed": 0},
                                   DAGSTER_URL=url),
    }
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    registry = {
        "versions": {v.version: v.tags.get("dagster_run_id") for v in client.search_model_versions(
            "name='mlplatform_iris'")} if results["dag_training"].returncode == 0 else {},
        "production": client.get_model_version_by_alias("mlplatform_iris", "Production").version
        if results["dag_training"].returncode == 0 else None,
    }
    # No dataset in the config: every dataset partition Dagster has (here: iris), as a scheduled run does.
    results["dag_inference"] = _dags_test("dag_inference", airflow_home, logs, None, DAGSTER_URL=url)
    results["dag_model_monitoring"] = _dags_test("dag_model_monitoring", airflow_home, logs, {"dataset": "iris"},
                                                 DAGSTER_URL=url)
    return results, registry


def test_dag_data_predictions_loads_the_dataset_in_dagster(dagster, lifecycle):
    url, _ = dagster
    result = lifecycle[0]["dag_data_predictions"]
    _assert_ran(result, url, "dag_data_predictions", ["iris"])
    assert "added the dataset partition 'iris'" in result.output


def test_dag_training_registers_a_new_model_version(dagster, lifecycle):
    url, _ = dagster
    results, registry = lifecycle
    training_run = _assert_ran(results["dag_training"], url, "dag_training", ["iris"])["iris"]
    assert list(registry["versions"].values()) == [training_run]
    assert registry["production"] in registry["versions"]
    # The DAG's params reached Dagster as run config.
    query = '{ runOrError(runId: %s) { ... on Run { runConfigYaml } } }' % json.dumps(training_run)
    assert "seed: 0" in graphql(url, query)["runOrError"]["runConfigYaml"]


def test_dag_inference_writes_predictions(dagster, lifecycle):
    url, home = dagster
    _assert_ran(lifecycle[0]["dag_inference"], url, "dag_inference", ["iris"])
    with sqlite3.connect(home / "app.db") as db:
        [(rows,)] = db.execute("SELECT count(*) FROM predictions WHERE model_name = 'mlplatform_iris'").fetchall()
    assert rows == 150


def test_dag_model_monitoring_reports(dagster, lifecycle):
    url, _ = dagster
    _assert_ran(lifecycle[0]["dag_model_monitoring"], url, "dag_model_monitoring", ["iris"])


def test_a_failed_dagster_run_fails_the_airflow_task_and_is_retried(dagster, lifecycle, airflow_home, tmp_path):
    """Scheduled-style dag_inference (no dataset: every partition) over iris and a partition with no model.

    The never-trained partition's Dagster run fails, so the Airflow task fails with that run's cause; Airflow's
    retry launches the failed dataset again but not iris, whose run of the first try succeeded.
    """
    url, _ = dagster
    add = ('mutation { addDynamicPartition(repositorySelector: %s, partitionsDefName: "dataset", '
           'partitionKey: "never_loaded") { __typename } }') % _repository_selector()
    assert graphql(url, add)["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    try:
        # The URL from an Airflow variable this time (AIRFLOW_VAR_*), not DAGSTER_URL.
        result = _dags_test("dag_inference", airflow_home, tmp_path, None, AIRFLOW_VAR_DAGSTER_URL=url,
                            MLPLATFORM_DAG_RETRIES="1", MLPLATFORM_DAG_RETRY_DELAY_SECONDS="1")
    finally:
        delete = ('mutation { deleteDynamicPartitions(repositorySelector: %s, partitionsDefName: "dataset", '
                  'partitionKeys: ["never_loaded"]) { __typename } }') % _repository_selector()
        graphql(url, delete)
    assert result.returncode != 0, result.tail()
    assert "from Airflow variable 'dagster_url'" in result.output
    launched = _launched(result.output)
    assert sorted(dataset for _, _, dataset, _ in launched) == ["iris", "never_loaded", "never_loaded"], result.tail()
    [iris_run] = [run_id for run_id, _, dataset, _ in launched if dataset == "iris"]
    assert _run(url, iris_run)["status"] == "SUCCESS"
    assert f"dataset 'iris': Dagster run {iris_run} of an earlier try of this task succeeded, not run again" \
        in result.output
    failed = [run_id for run_id, _, dataset, _ in launched if dataset == "never_loaded"]
    for run_id in failed:
        assert _run(url, run_id)["status"] == "FAILURE"
        link = f"{url}/runs/{run_id}"
        assert f"Dagster run {run_id} (inference_job, dataset 'never_loaded') ended FAILURE: {link}" in result.output
    assert len({_run(url, run_id)["tags"]["dagster-airlift/airflow-dag-run-id"] for run_id in failed}) == 1
    assert ("step predictions: LookupError: registered model 'mlplatform_never_loaded' has no version with alias "
            "'Production'") in result.output
    assert "DagRun failed" in result.output or "state=failed" in result.output
    assert "asked Dagster to terminate" not in result.output  # nothing of the first try is stopped by the second


def test_an_unknown_dataset_fails_before_anything_runs(dagster, lifecycle, airflow_home, tmp_path):
    url, _ = dagster
    result = _dags_test("dag_inference", airflow_home, tmp_path, {"dataset": "no_such_dataset"}, DAGSTER_URL=url)
    assert result.returncode != 0, result.tail()
    assert "AirflowFailException: unknown dataset 'no_such_dataset'" in result.output
    assert "load it first with dag_data_predictions" in result.output
    assert _launched(result.output) == []


def test_an_unreachable_dagster_fails_the_task_naming_the_url(airflow_home, tmp_path):
    port = free_port()  # nothing listens there
    connection = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})
    result = _dags_test("dag_model_monitoring", airflow_home, tmp_path, None, AIRFLOW_CONN_DAGSTER_DEFAULT=connection)
    assert result.returncode != 0, result.tail()
    assert (f"Dagster is unreachable at http://127.0.0.1:{port} (from Airflow connection 'dagster_default')"
            in result.output), result.tail()


def test_a_canceled_dagster_run_fails_the_airflow_task(dagster, lifecycle, airflow_home, tmp_path):
    """A Dagster run canceled (e.g. from Dagster's UI) while Airflow waits for it fails the Airflow task."""
    url, _ = dagster
    env = airflow_environment(airflow_home, DAGSTER_URL=url)
    args = [str(AIRFLOW_BIN / "airflow"), "dags", "test", "dag_data_predictions", "--conf", '{"dataset": "wine"}']
    log = tmp_path / "canceled.log"
    runs = ('{ runsOrError(filter: {tags: [{key: "%s", value: "dag_data_predictions"}, '
            '{key: "dagster/partition", value: "wine"}]}) { ... on Runs { results { runId status } } } }'
            % AIRLIFT_DAG_TAG)
    with open(log, "wb") as out:
        process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # Cancel it as soon as Dagster has it (a NOT_STARTED run cannot be terminated yet), before it can end.
        while True:
            found = graphql(url, runs)["runsOrError"]["results"]
            if found and found[0]["status"] in ("QUEUED", "STARTING", "STARTED"):
                terminate = 'mutation { terminateRun(runId: %s) { __typename } }' % json.dumps(found[0]["runId"])
                if graphql(url, terminate)["terminateRun"]["__typename"] == "TerminateRunSuccess":
                    break
            assert process.poll() is None and time.monotonic() < deadline, (found, log.read_text()[-6000:])
            time.sleep(0.1)
        [run] = found
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        delete = ('mutation { deleteDynamicPartitions(repositorySelector: %s, partitionsDefName: "dataset", '
                  'partitionKeys: ["wine"]) { __typename } }') % _repository_selector()
        graphql(url, delete)
    output = log.read_text()
    assert returncode != 0, output[-6000:]
    assert _run(url, run["runId"])["status"] == "CANCELED"
    assert f"Dagster run {run['runId']} (data_load_job, dataset 'wine') ended CANCELED: {url}/runs/{run['runId']}" \
        in output, output[-6000:]
