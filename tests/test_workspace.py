"""`dagster dev -w workspace.yaml` from the repository root loads the code location and shows the lifecycle."""

from __future__ import annotations

import time

from conftest import REPO_ROOT
from processes import dagster_dev, graphql

LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
CONTENTS = """{
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } schedules { name cronSchedule } } } }
}"""


def _loaded(url: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        [entry] = graphql(url, LOCATION)["workspaceOrError"]["locationEntries"]
        if entry["locationOrLoadError"] or time.monotonic() > deadline:
            return entry
        time.sleep(1)


def test_dagster_dev_from_the_repository_root(tmp_path, clean_environment):
    env = {"DAGSTER_HOME": str(tmp_path / "dagster"), "MLPLATFORM_HOME": str(tmp_path / "home")}
    with dagster_dev(REPO_ROOT, tmp_path / "dagster-dev.log", env) as url:
        entry = _loaded(url)
        assert entry["name"] == "mlplatform"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        data = graphql(url, CONTENTS)
    checks = {
        "/".join(node["assetKey"]["path"]): sorted(c["name"] for c in node["assetChecksOrError"]["checks"])
        for node in data["assetNodes"]
    }
    assert checks == {
        "raw_dataset": ["no_nulls", "target_present", "typed_schema"],
        "candidate_model": [],
        "production_alias": [],
        "predictions": [],
        "monitoring_report": ["no_feature_drift", "production_quality"],
    }
    [repository] = data["repositoriesOrError"]["nodes"]
    jobs = {j["name"] for j in repository["jobs"]}
    assert {"data_load_job", "training_job", "inference_job", "monitoring_job"} <= jobs
    assert {s["name"]: s["cronSchedule"] for s in repository["schedules"]} == {
        "data_load_job_schedule": "@daily",
        "training_job_schedule": "@weekly",
        "inference_job_schedule": "@hourly",
        "monitoring_job_schedule": "@daily",
    }
