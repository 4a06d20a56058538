"""The S3 server behind the tracking server stopped while training logs its models: the run fails naming the
artifact store, every MLflow run of it ends FAILED, no alias moves; with S3 back, the same job succeeds."""

from __future__ import annotations

import pytest

from mlplatform.model_registry import TrackedRun
from mlplatform.runner import JobFailed

from conftest import Lifecycle, embedded_settings
from mlflow_stack import TRACKING_PASSWORD

DATASET, MODEL = "iris", "s3fault_iris"


def test_s3_stopped_mid_training_fails_the_run_and_a_rerun_after_restart_succeeds(
    mlflow_stack, tmp_path, migrated_mlflow_store, monkeypatch, capsys
):
    # MLflow's client retries a failed request for minutes by default; one retry shows the same outcome.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    settings = embedded_settings(
        tmp_path / "home",
        migrated_mlflow_store,
        MLFLOW_TRACKING_URI=mlflow_stack.tracking_uri(),
        MLFLOW_MODEL_NAME="s3fault",
        MLFLOW_EXPERIMENT_NAME="s3-fault",
    )
    lifecycle = Lifecycle(settings)
    try:
        lifecycle.load(DATASET)
        log_model = TrackedRun.log_sklearn_model

        def s3_stops_first(run, pipeline, **options):  # the fault at a known point: before the first model upload
            if mlflow_stack.s3.process is not None:
                mlflow_stack.s3.stop()
            return log_model(run, pipeline, **options)

        with monkeypatch.context() as hook:
            hook.setattr(TrackedRun, "log_sklearn_model", s3_stops_first)
            try:
                with pytest.raises(JobFailed) as failed:
                    lifecycle.run("training_job", DATASET)
            finally:
                if mlflow_stack.s3.process is None:
                    mlflow_stack.s3.start()
        message = str(failed.value)
        assert "ArtifactStoreFailed" in message and "could not store artifacts" in message
        assert "MLFLOW_S3_ENDPOINT_URL" in message and "is the S3 server up?" in message
        assert TRACKING_PASSWORD not in message + capsys.readouterr().out  # the error, and MLflow's run links
        registry = lifecycle.registry()
        runs = registry.client.search_runs([registry.experiment_id()])
        assert runs and {r.info.status for r in runs} == {"FAILED"}  # the parent and the candidate it was logging
        assert [registry.alias_version(MODEL, a) for a in ("challenger", "Production")] == [None, None]

        lifecycle.run("training_job", DATASET)
        assert int(registry.require_alias(MODEL, "Production").version) == 1
        assert int(registry.require_alias(MODEL, "challenger").version) == 1
    finally:
        lifecycle.instance.dispose()
