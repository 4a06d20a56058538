"""Airflow -> Dagster: launch one of the platform's Dagster jobs over Dagster's GraphQL API and wait for it.

Built on dagster-airlift's maintained in-Airflow operator (``BaseMaterializeAssetsOperator``): the session, the
asset lookup, run status polling and Dagster's own run retries come from it; this module adds what the platform's
jobs need on top: the named job (so its hooks run), dataset partitions, run config, clear errors and run links.

Needs only Airflow, ``requests`` and ``dagster-airlift[in-airflow]``; nothing from the platform, no Dagster install.

Where Dagster is (first found wins):
1. the Airflow connection ``dagster_default`` (type HTTP: host, port, schema ``http``/``https``; login/password
   become HTTP basic auth; extra ``{"headers": {...}, "ui_url": "..."}``);
2. the Airflow variable ``dagster_url``;
3. the environment variable ``DAGSTER_URL`` of the worker;
4. ``http://localhost:3000``.
Links in the task log use ``ui_url`` (connection extra), else the variable ``dagster_ui_url``, else
``DAGSTER_UI_URL``, else the URL above: set it when the workers reach Dagster by a name browsers cannot resolve.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
from airflow.sdk import BaseHook, Param, Variable
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSkipException,
)
from dagster_airlift.in_airflow.gql_queries import ASSET_NODES_QUERY, VERIFICATION_QUERY
from dagster_airlift.in_airflow.materialize_assets_operator import BaseMaterializeAssetsOperator
from dagster_airlift.in_airflow.partition_utils import PARTITION_NAME_TAG, PartitioningInformation

CONN_ID = "dagster_default"
URL_VARIABLE = "dagster_url"
UI_URL_VARIABLE = "dagster_ui_url"
DEFAULT_URL = "http://localhost:3000"

# The platform's dataset partitions (mlplatform.assets.partitions) and naming rule (mlplatform.datasets.sources);
# copied, not imported: Airflow images carry no platform code. tests/deploy checks they stay equal.
PARTITIONS_DEF_NAME = "dataset"
DATASET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
BUILTIN_DATASETS = ("iris", "wine", "breast_cancer", "diabetes")

TERMINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")
# While a run is being waited for, how long Dagster may stay unreachable (e.g. a webserver restart).
UNREACHABLE_GRACE_S = 120

_LAUNCH_MUTATION = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""
_ADD_PARTITION_MUTATION = """
mutation AddPartition($repositorySelector: RepositorySelector!, $partitionsDefName: String!, $partitionKey: String!) {
  addDynamicPartition(repositorySelector: $repositorySelector, partitionsDefName: $partitionsDefName,
                      partitionKey: $partitionKey) {
    __typename
    ... on Error { message }
  }
}
"""
_RUN_FAILURES_QUERY = """
query RunFailures($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } }
        ... on RunFailureEvent { message }
      }
    }
  }
}
"""
_EARLIER_RUNS_QUERY = """
query EarlierRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on Error { message }
  }
}
"""
_TERMINATE_MUTATION = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) { __typename ... on Error { message } }
}
"""


@dataclass(frozen=True)
class DagsterEndpoint:
    url: str
    ui_url: str
    found_in: str
    auth: tuple[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _variable(key: str) -> str | None:
    try:
        value = Variable.get(key, default=None)
    except Exception:  # no metadata database / API reachable: fall through to the environment
        return None
    return str(value).strip() if value else None


def _connection():
    try:
        return BaseHook.get_connection(CONN_ID)
    except AirflowNotFoundException:
        return None


def _url_from_connection(conn) -> str:
    host = (conn.host or "").strip().rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    return f"{host}:{conn.port}" if conn.port else host


def resolve_endpoint() -> DagsterEndpoint:
    """Where Dagster's webserver is, from the connection, the variable or the environment (see module docs)."""
    ui_url = _variable(UI_URL_VARIABLE) or os.environ.get("DAGSTER_UI_URL", "").strip() or None
    conn = _connection()
    if conn is not None and conn.host:
        extra = conn.extra_dejson
        url = _url_from_connection(conn)
        auth = (conn.login, conn.password or "") if conn.login else None
        return DagsterEndpoint(
            url=url, ui_url=(extra.get("ui_url") or ui_url or url).rstrip("/"),
            found_in=f"Airflow connection {CONN_ID!r}", auth=auth, headers=dict(extra.get("headers") or {}),
        )
    for found_in, value in (
        (f"Airflow variable {URL_VARIABLE!r}", _variable(URL_VARIABLE)),
        ("environment variable DAGSTER_URL", os.environ.get("DAGSTER_URL", "").strip()),
    ):
        if value:
            return DagsterEndpoint(url=value.rstrip("/"), ui_url=(ui_url or value).rstrip("/"), found_in=found_in)
    return DagsterEndpoint(url=DEFAULT_URL, ui_url=(ui_url or DEFAULT_URL).rstrip("/"), found_in="the default")


def validate_dataset_name(name: Any) -> str:
    if not isinstance(name, str) or not re.match(DATASET_NAME_PATTERN, name):
        raise AirflowFailException(
            f"dataset name {name!r} is invalid: use 1-40 lower-case letters, digits or '_', starting with a letter"
        )
    return name


class DagsterJobOperator(BaseMaterializeAssetsOperator):
    """Runs one of the platform's Dagster jobs for dataset partitions and fails when a Dagster run does not succeed.

    The dataset comes from the DAG param ``dataset``; without it, the job runs for every dataset partition Dagster
    has (one Dagster run each, all launched, then all waited for); with none, the task is skipped. Run config comes
    from ``run_config`` (override it).

    Failures: unknown names, rejected run config and runs canceled in Dagster fail the task without retries; a failed
    run or an unreachable Dagster fail it with retries. A retry of the same Airflow run does not launch again what an
    earlier try already ran successfully, and waits for a run an earlier try left going (found by the
    dagster-airlift tags: DAG id, DAG run id, task id, plus the partition). When the task is killed or times out,
    the runs it waits for are terminated.
    """

    ui_color = "#4f43dd"

    def __init__(self, *, job_name: str, asset_key_paths: Sequence[str], poll_interval_s: int = 2, **kwargs):
        super().__init__(asset_key_paths=asset_key_paths, dagster_run_status_poll_interval=poll_interval_s, **kwargs)
        self.job_name = job_name
        self._endpoint: DagsterEndpoint | None = None
        self._session: requests.Session | None = None
        self._running: list[str] = []

    # dagster-airlift's two extension points
    def get_dagster_url(self, context) -> str:
        return self._resolved().url

    def get_dagster_session(self, context) -> requests.Session:
        if self._session is None:
            endpoint = self._resolved()
            session = requests.Session()
            session.headers.update(endpoint.headers)
            if endpoint.auth:
                session.auth = endpoint.auth
            self._session = session
        return self._session

    def _resolved(self) -> DagsterEndpoint:
        if self._endpoint is None:
            self._endpoint = resolve_endpoint()
        return self._endpoint

    # what the DAGs customise
    def requested_dataset(self, context) -> str | None:
        value = (context.get("params") or {}).get("dataset")
        return validate_dataset_name(value) if value not in (None, "") else None

    def select_datasets(self, context, known: Sequence[str]) -> list[str]:
        """The partitions to run; ``known`` are the dataset partitions Dagster has."""
        requested = self.requested_dataset(context)
        if requested is None:
            if not known:
                raise AirflowSkipException(
                    f"Dagster has no dataset partitions yet, nothing to run {self.job_name} for: trigger "
                    f"dag_data_predictions with {{\"dataset\": \"iris\"}} first"
                )
            return sorted(known)
        if requested not in known:
            raise AirflowFailException(
                f"unknown dataset {requested!r}: Dagster has the dataset partitions {sorted(known) or 'none'}; "
                f"load it first with dag_data_predictions ({{\"dataset\": \"{requested}\"}})"
            )
        return [requested]

    def run_config(self, context, dataset: str) -> dict:
        return {}

    # the run
    def execute(self, context) -> list[str]:
        # Per-try state, set here and not in __init__: Airflow may run several tries on copies of one instance.
        self._endpoint, self._session, self._running = None, None, []
        endpoint = self._resolved()
        self.log.info("Dagster at %s (from %s), job %s", endpoint.url, endpoint.found_in, self.job_name)
        try:
            return self._launch_and_wait(context, endpoint)
        except requests.RequestException as error:
            raise AirflowException(
                f"Dagster is unreachable at {endpoint.url} (from {endpoint.found_in}): {error}. Point the Airflow "
                f"connection {CONN_ID!r}, the variable {URL_VARIABLE!r} or DAGSTER_URL at Dagster's webserver."
            ) from error
        except BaseException:
            self._terminate_running()
            raise

    def _launch_and_wait(self, context, endpoint: DagsterEndpoint) -> list[str]:
        session = self.get_dagster_session(context)
        version = self._post(session, endpoint, VERIFICATION_QUERY, {}, "version", timeout=15)
        self.log.info("Dagster %s answers at %s", version, endpoint.url)
        nodes = list(self.filter_asset_nodes(context, self.get_all_asset_nodes(session, endpoint.url, context)))
        location, repository = self._job_location(nodes, endpoint)
        partitioning = PartitioningInformation.from_asset_node_graphql(nodes)
        known = list(partitioning.partition_keys) if partitioning else []
        datasets = self.select_datasets(context, known)
        for dataset in datasets:
            if dataset not in known:
                self._add_partition(session, endpoint, location, repository, dataset)

        earlier = self._earlier_runs(context, session, endpoint)
        waiting: dict[str, str] = {}
        for dataset in datasets:
            runs = earlier.get(dataset, [])
            succeeded = next((r["runId"] for r in runs if r["status"] == "SUCCESS"), None)
            active = next((r["runId"] for r in runs if r["status"] not in TERMINAL_STATUSES), None)
            if succeeded:
                self.log.info("dataset %r: Dagster run %s of an earlier try of this task succeeded, not run again: "
                              "%s/runs/%s", dataset, succeeded, endpoint.ui_url, succeeded)
                continue
            if active:
                run_id = active
                self.log.info("Dagster run %s of an earlier try (%s for dataset %r) is still going, waiting for it: "
                              "%s/runs/%s", run_id, self.job_name, dataset, endpoint.ui_url, run_id)
            else:
                run_id = self._launch(context, session, endpoint, location, repository, dataset)
                self.log.info("Dagster run %s: %s for dataset %r: %s/runs/%s",
                              run_id, self.job_name, dataset, endpoint.ui_url, run_id)
            waiting[dataset] = run_id
            self._running.append(run_id)

        failures: dict[str, str] = {}
        for dataset, run_id in waiting.items():
            final_id, status = self._wait(session, endpoint, run_id)
            self._running = [r for r in self._running if r not in (run_id, final_id)]
            link = f"{endpoint.ui_url}/runs/{final_id}"
            if status == "SUCCESS":
                self.log.info("Dagster run %s (%s, dataset %r) succeeded: %s", final_id, self.job_name, dataset, link)
                continue
            detail = self._failure_detail(session, endpoint, final_id)
            self.log.error("Dagster run %s (%s, dataset %r) ended %s: %s\n%s",
                           final_id, self.job_name, dataset, status, link, detail)
            failures[status] = failures.get(status, "") + (
                f"Dagster run {final_id} ({self.job_name}, dataset {dataset!r}) ended {status}: {link}\n{detail}\n")
        if failures:
            message = "".join(failures.values()).rstrip()
            if set(failures) == {"CANCELED"}:
                # Someone stopped it in Dagster on purpose: no Airflow retry.
                raise AirflowFailException(message)
            raise AirflowException(message)
        return list(waiting.values())

    def _earlier_runs(self, context, session, endpoint) -> dict[str, list[dict]]:
        """This task's Dagster runs from earlier tries of the same Airflow run, newest first, by dataset."""
        tags = [{"key": k, "value": v} for k, v in self.default_dagster_run_tags(context).items()]
        result = self._post(session, endpoint, _EARLIER_RUNS_QUERY, {"filter": {"tags": tags}}, "runsOrError")
        if result.get("__typename") != "Runs":
            raise AirflowException(f"Dagster at {endpoint.url} could not list runs: {result.get('message', result)}")
        by_dataset: dict[str, list[dict]] = {}
        for run in result["results"]:
            dataset = next((t["value"] for t in run["tags"] if t["key"] == PARTITION_NAME_TAG), None)
            if dataset is not None:
                by_dataset.setdefault(dataset, []).append(run)
        return by_dataset

    def get_all_asset_nodes(self, session, dagster_url: str, context) -> Sequence[Mapping[str, Any]]:
        # dagster-airlift's query, with more time than its 3 s: a busy webserver is not an absent one.
        return self._post(session, self._resolved(), ASSET_NODES_QUERY, {}, "assetNodes", timeout=60)

    def _job_location(self, nodes: Iterable[Mapping[str, Any]], endpoint: DagsterEndpoint) -> tuple[str, str]:
        for node in nodes:
            for job in node["jobs"]:
                if job["name"] == self.job_name:
                    return job["repository"]["location"]["name"], job["repository"]["name"]
        raise AirflowFailException(
            f"Dagster at {endpoint.url} has no job {self.job_name!r} for the assets {self.asset_key_paths}"
        )

    def _post(self, session: requests.Session, endpoint: DagsterEndpoint, query: str, variables: dict,
              key: str, timeout: float = 30) -> Any:
        response = session.post(f"{endpoint.url}/graphql", json={"query": query, "variables": variables},
                                timeout=timeout)
        if response.status_code != 200:
            raise AirflowException(f"Dagster at {endpoint.url} answered HTTP {response.status_code}: "
                                   f"{response.text[:500]}")
        return self.get_valid_graphql_response(response, key)

    def _add_partition(self, session, endpoint, location: str, repository: str, dataset: str) -> None:
        result = self._post(session, endpoint, _ADD_PARTITION_MUTATION, {
            "repositorySelector": {"repositoryLocationName": location, "repositoryName": repository},
            "partitionsDefName": PARTITIONS_DEF_NAME, "partitionKey": dataset,
        }, "addDynamicPartition")
        if result["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise AirflowException(f"could not add the dataset partition {dataset!r} in Dagster: "
                                   f"{result.get('message', result)}")
        self.log.info("added the dataset partition %r in Dagster", dataset)

    def _launch(self, context, session, endpoint, location: str, repository: str, dataset: str) -> str:
        tags = {**self.default_dagster_run_tags(context), PARTITION_NAME_TAG: dataset}
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": repository,
                         "pipelineName": self.job_name},
            "runConfigData": json.dumps(self.run_config(context, dataset)),
            "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in tags.items()]},
        }
        result = self._post(session, endpoint, _LAUNCH_MUTATION, {"executionParams": params},
                            "launchPipelineExecution")
        if result["__typename"] == "LaunchRunSuccess":
            return result["run"]["id"]
        if result["__typename"] == "RunConfigValidationInvalid":
            errors = "; ".join(e["message"] for e in result["errors"])
            raise AirflowFailException(f"Dagster rejected the run config of {self.job_name}: {errors}")
        raise AirflowException(f"Dagster did not launch {self.job_name} for dataset {dataset!r}: "
                               f"{result['__typename']}: {result.get('message', '')}")

    def _wait(self, session, endpoint, run_id: str) -> tuple[str, str]:
        """Polls until the run (or the run Dagster retried it as) ends; returns its id and final status."""
        unreachable_since = None
        while True:
            try:
                result = self.wait_for_run_to_complete(session=session, dagster_url=endpoint.url, run_id=run_id)
            except requests.RequestException as error:
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > UNREACHABLE_GRACE_S:
                    raise
                self.log.warning("Dagster at %s unreachable while waiting for run %s (%s); retrying",
                                 endpoint.url, run_id, error)
                time.sleep(5)
                continue
            except KeyError as error:  # runOrError was not a Run: RunNotFoundError or PythonError
                raise AirflowException(f"Dagster at {endpoint.url} lost run {run_id}") from error
            unreachable_since = None
            if result.succeeded or not result.run_will_automatically_retry:
                return run_id, result.status
            if result.retried_run_id:
                self.log.info("Dagster run %s ended %s; Dagster retries it as run %s: %s/runs/%s", run_id,
                              result.status, result.retried_run_id, endpoint.ui_url, result.retried_run_id)
                self._running.append(result.retried_run_id)
                run_id = result.retried_run_id
            else:
                time.sleep(self.dagster_run_status_poll_interval)

    def _failure_detail(self, session, endpoint, run_id: str) -> str:
        try:
            logs = self._post(session, endpoint, _RUN_FAILURES_QUERY, {"runId": run_id}, "logsForRun")
        except Exception as error:  # the detail is a courtesy; the status already decided
            return f"(could not read the run's events: {error})"
        lines = []
        for event in logs.get("events") or []:
            if event["__typename"] == "ExecutionStepFailureEvent":
                error = event.get("error") or {}
                causes = [c["message"].strip() for c in error.get("causes") or []]
                lines.append(f"  step {event['stepKey']}: {causes[-1] if causes else error.get('message', '').strip()}")
            elif event["__typename"] == "RunFailureEvent":
                lines.append(f"  {event.get('message', '').strip()}")
        return "\n".join(lines) or "  (no failure events; see the run's logs in the Dagster UI)"

    def _terminate_running(self) -> None:
        """Stops the Dagster runs this task launched and still waits for (task killed, timed out or failed)."""
        if not self._running or self._endpoint is None:
            return
        for run_id in list(self._running):
            try:
                self._post(self.get_dagster_session(None), self._endpoint, _TERMINATE_MUTATION, {"runId": run_id},
                           "terminateRun", timeout=10)
                self.log.warning("asked Dagster to terminate run %s", run_id)
            except Exception as error:
                self.log.warning("could not terminate Dagster run %s: %s", run_id, error)
        self._running = []

    def on_kill(self) -> None:
        self._terminate_running()


class DagsterDataLoadOperator(DagsterJobOperator):
    """data_load_job: ``dataset`` may be new (a built-in, or any name with a ``source``): its partition is added."""

    def select_datasets(self, context, known: Sequence[str]) -> list[str]:
        requested = self.requested_dataset(context)
        params = context.get("params") or {}
        source = (params.get("source") or "").strip()
        if requested is None:
            if source:
                raise AirflowFailException("a 'source' needs a 'dataset' name to load it as")
            return super().select_datasets(context, known)
        if requested not in known and requested not in BUILTIN_DATASETS and not source:
            raise AirflowFailException(
                f"unknown dataset {requested!r}: not a built-in ({', '.join(BUILTIN_DATASETS)}), not loaded before "
                f"(Dagster has {sorted(known) or 'none'}), and no 'source' (CSV path) given"
            )
        return [requested]

    def run_config(self, context, dataset: str) -> dict:
        params = context.get("params") or {}
        config = {"source": (params.get("source") or "").strip(), "target": (params.get("target") or "").strip()}
        return {"ops": {"raw_dataset": {"config": config}}}


class DagsterTrainingOperator(DagsterJobOperator):
    """training_job: passes ``seed``, ``validation_fraction`` and ``promotion_margin`` through when given."""

    def run_config(self, context, dataset: str) -> dict:
        params = context.get("params") or {}
        training = {k: params[k] for k in ("seed", "validation_fraction") if params.get(k) is not None}
        ops = {}
        if training:
            ops["candidate_model"] = {"config": training}
        if params.get("promotion_margin") is not None:
            ops["production_alias"] = {"config": {"margin": params["promotion_margin"]}}
        return {"ops": ops} if ops else {}


def dag_defaults(execution_timeout: timedelta) -> dict:
    """``default_args`` of every DAG here: retries with a delay (a Dagster run that failed is launched anew).

    ``MLPLATFORM_DAG_RETRIES`` (default 2) and ``MLPLATFORM_DAG_RETRY_DELAY_SECONDS`` (default 300) change them
    where the DAGs are parsed, e.g. 0 for ``airflow dags test``, which otherwise waits out every retry delay.
    """
    return {
        "owner": "mlplatform",
        "retries": int(os.environ.get("MLPLATFORM_DAG_RETRIES", "2")),
        "retry_delay": timedelta(seconds=int(os.environ.get("MLPLATFORM_DAG_RETRY_DELAY_SECONDS", "300"))),
        "execution_timeout": execution_timeout,
    }


def dataset_param(description: str) -> Param:
    return Param(None, type=["null", "string"], pattern=DATASET_NAME_PATTERN, title="Dataset",
                 description=description)
