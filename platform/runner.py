"""Run the platform's Dagster jobs in this process, recorded in the Dagster instance (so the UI shows them)."""

from __future__ import annotations

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult

from mlplatform.assets.partitions import DATASET_PARTITIONS
from mlplatform.logs import log_event, platform_logger

LOG = platform_logger("runs")


class JobFailed(RuntimeError):
    """A job run failed; the message names the job, the step and the step's error."""


def ensure_partition(instance: DagsterInstance, key: str) -> None:
    if not instance.has_dynamic_partition(DATASET_PARTITIONS, key):
        instance.add_dynamic_partitions(DATASET_PARTITIONS, [key])


def run_job(
    defs: Definitions,
    instance: DagsterInstance,
    job_name: str,
    partition: str,
    run_config: dict | None = None,
    log_level: str = "INFO",
) -> ExecuteInProcessResult:
    ensure_partition(instance, partition)
    job = defs.resolve_job_def(job_name)
    config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    result = job.execute_in_process(instance=instance, partition_key=partition, run_config=config, raise_on_error=False)
    log_event(
        LOG, "run_finished" if result.success else "run_failed", dataset=partition, run_id=result.run_id, job=job_name
    )
    if not result.success:
        failures = [
            f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        ]
        detail = "\n".join(failures) or "see the run's logs in the Dagster UI"
        raise JobFailed(f"{job_name} for dataset {partition!r} failed (run {result.run_id}):\n{detail}")
    return result


def _root_cause(error) -> str:
    """The user's exception under Dagster's wrapping, e.g. ``DatasetError: CSV file x.csv is empty``."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def materialization_metadata(result: ExecuteInProcessResult, asset_name: str) -> dict:
    """The metadata an asset recorded in this run, as plain values."""
    [materialization] = result.asset_materializations_for_node(asset_name)
    return {key: value.value for key, value in materialization.metadata.items()}
