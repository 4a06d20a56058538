"""Airflow -> Dagster: a DAG's task runs a Dagster job as ONE Dagster backfill of its dataset partitions, and waits.

dagster-airlift's ``BaseMaterializeAssetsOperator`` checks that Dagster answers, reads the job's assets and their
partitions, and tags the runs with the Airflow DAG, run and task. Dagster's URL: the Airflow connection
``dagster_default`` (schema, host, port), else the environment variable ``DAGSTER_URL``, else http://localhost:3000.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSkipException,
)
from dagster_airlift.in_airflow.materialize_assets_operator import BaseMaterializeAssetsOperator
from dagster_airlift.in_airflow.partition_utils import PARTITION_NAME_TAG, PartitioningInformation

SCHEDULER_VARIABLE, SCHEDULERS = "MLPLATFORM_SCHEDULER", ("dagster", "airflow")  # default first, as the platform's
CONN_ID, DEFAULT_URL = "dagster_default", "http://localhost:3000"

_PARTITION = "$repo: RepositorySelector!, $name: String!, $key: String!"
_ADD = f"""mutation({_PARTITION}) {{ addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name,
  partitionKey: $key) {{ __typename ... on Error {{ message }} }} }}"""
_DELETE = f"""mutation({_PARTITION}) {{ deleteDynamicPartitions(repositorySelector: $repo, partitionsDefName: $name,
  partitionKeys: [$key]) {{ __typename ... on Error {{ message }} }} }}"""
_LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
_BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename ... on Error { message }
  ... on PartitionBackfill { status error { message } runs { runId status tags { key value } } } } }"""


def schedule_for(cron: str) -> str | None:
    """A DAG's schedule: ``cron`` when MLPLATFORM_SCHEDULER is ``airflow``, else None (Dagster's schedules run)."""
    scheduler = os.environ.get(SCHEDULER_VARIABLE, SCHEDULERS[0])
    if scheduler not in SCHEDULERS:
        raise ValueError(f"{SCHEDULER_VARIABLE} must be one of {', '.join(SCHEDULERS)}; got {scheduler!r}")
    return cron if scheduler == "airflow" else None


class DagsterJobOperator(BaseMaterializeAssetsOperator):
    """Runs the named job (so its hooks run) for the ``dataset`` param, else every partition; fails unless all succeed.

    ``config_params``: DAG param -> (op, config field) of the run config; they need a ``dataset``. ``adds_datasets``:
    a new ``dataset`` becomes a partition (removed again if its run fails), else unknown ones fail. Failed runs fail
    the task with retries; runs canceled in Dagster (on purpose) without."""

    def __init__(self, *, job_name: str, config_params: dict | None = None, adds_datasets: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.job_name, self.config_params, self.adds_datasets = job_name, config_params or {}, adds_datasets

    def get_dagster_url(self, context) -> str:
        try:
            conn = BaseHook.get_connection(CONN_ID)
        except AirflowNotFoundException:
            return os.environ.get("DAGSTER_URL", DEFAULT_URL).rstrip("/")
        return f"{conn.schema or 'http'}://{conn.host}" + (f":{conn.port}" if conn.port else "")

    def get_dagster_session(self, context) -> requests.Session:
        return requests.Session()

    def launch_runs_for_task(self, context, dag_id: str, task_id: str) -> None:
        """Called by airlift's ``execute``: picks the datasets, then runs their backfill."""
        url = self.get_dagster_url(context)
        try:
            session = self._get_validated_session(context)
            nodes = list(self.filter_asset_nodes(context, self.get_all_asset_nodes(session, url, context)))
        except requests.RequestException as error:
            hint = f"set the Airflow connection {CONN_ID!r} or DAGSTER_URL to Dagster's webserver"
            raise AirflowException(f"Dagster is unreachable at {url} ({hint}): {error}") from error
        known = sorted(PartitioningInformation.from_asset_node_graphql(nodes).partition_keys)
        dataset, config = context["params"].get("dataset") or None, self.run_config(context["params"])
        if config and not dataset:
            raise AirflowFailException(f"{', '.join(self.config_params)} apply to one dataset: give 'dataset' too")
        if not dataset and not known:
            raise AirflowSkipException(f"Dagster has no dataset partitions, nothing to run {self.job_name} for")
        new = bool(dataset) and dataset not in known
        if new and not self.adds_datasets:
            raise AirflowFailException(f"unknown dataset {dataset!r}: Dagster has {known}; load it first")
        repository = nodes[0]["jobs"][0]["repository"]
        repo = {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}
        partition = {"repo": repo, "name": nodes[0]["partitionDefinition"]["name"], "key": dataset}
        if new:
            self._graphql(session, url, _ADD, partition, "addDynamicPartition")
            self.log.info("added the dataset partition %r in Dagster", dataset)
        try:
            self._run_backfill(context, session, url, repo, [dataset] if dataset else known, config)
        except AirflowException:
            if new:  # a dataset that never loaded leaves no partition behind
                self._graphql(session, url, _DELETE, partition, "deleteDynamicPartitions")
                self.log.info("removed the dataset partition %r from Dagster again", dataset)
            raise

    def run_config(self, params) -> dict:
        """The Dagster run config from the DAG params in ``config_params`` that are set."""
        ops: dict = {}
        for param, (op, field) in self.config_params.items():
            if params.get(param) not in (None, ""):
                ops.setdefault(op, {"config": {}})["config"][field] = params[param]
        return {"ops": ops} if ops else {}

    def _run_backfill(self, context, session, url: str, repo: dict, datasets: list[str], config: dict) -> None:
        tags = [{"key": key, "value": value} for key, value in self.default_dagster_run_tags(context).items()]
        selector = {"partitionSetName": f"{self.job_name}_partition_set", "repositorySelector": repo}
        params = {"selector": selector, "partitionNames": datasets, "tags": tags, "runConfigData": config}
        backfill_id = self._graphql(session, url, _LAUNCH, {"params": params}, "launchPartitionBackfill")["backfillId"]
        link, seen = f"{url}/runs/b/{backfill_id}", set()
        self.log.info("Dagster backfill %s: %s for %s: %s", backfill_id, self.job_name, datasets, link)
        while True:  # a job backfill is REQUESTED until its runs have ended (CANCELING/FAILING until canceled)
            backfill = self._graphql(session, url, _BACKFILL, {"id": backfill_id}, "partitionBackfillOrError")
            for run in (run for run in backfill["runs"] if run["runId"] not in seen):
                seen.add(run["runId"])
                self.log.info(self._describe(url, run))
            if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            time.sleep(self.dagster_run_status_poll_interval)
        if backfill["status"] == "COMPLETED_SUCCESS":
            return
        failed = [run for run in backfill["runs"] if run["status"] != "SUCCESS"]
        error = (backfill["error"] or {}).get("message", "")
        lines = [f"Dagster backfill ended {backfill['status']}: {link} {error}".rstrip()]
        message = "\n".join(lines + [f"{run['status']}: {self._describe(url, run)}" for run in failed])
        canceled = backfill["status"] != "FAILED" and all(run["status"] == "CANCELED" for run in failed)
        raise AirflowFailException(message) if canceled else AirflowException(message)

    def _describe(self, url: str, run: dict) -> str:
        dataset = next(tag["value"] for tag in run["tags"] if tag["key"] == PARTITION_NAME_TAG)
        return f"Dagster run {run['runId']}: {self.job_name} for dataset '{dataset}': {url}/runs/{run['runId']}"

    def _graphql(self, session, url: str, query: str, variables: dict, key: str) -> dict:
        response = session.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
        result = self.get_valid_graphql_response(response, key)
        if "message" in result:  # one of Dagster's error types
            raise AirflowException(f"Dagster at {url}: {key}: {result['__typename']}: {result['message']}")
        return result


def dag_defaults(execution_timeout: timedelta) -> dict:
    """Every DAG's ``default_args``: retries MLPLATFORM_DAG_RETRIES (2), MLPLATFORM_DAG_RETRY_DELAY_SECONDS apart."""
    retries = int(os.environ.get("MLPLATFORM_DAG_RETRIES", "2"))
    delay = timedelta(seconds=int(os.environ.get("MLPLATFORM_DAG_RETRY_DELAY_SECONDS", "300")))
    return {"owner": "mlplatform", "execution_timeout": execution_timeout, "retries": retries, "retry_delay": delay}
