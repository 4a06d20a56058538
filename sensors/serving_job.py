"""serving_job: one run per alias change or repair, reconciling one model@alias (logged, retried, in the UI)."""

from dagster import Config, Failure, OpExecutionContext, RetryPolicy, in_process_executor, job, op
from pydantic import Field

from mlplatform.logs import log_event
from mlplatform.masking import mask, masks_credentials
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.serving.rollout import RolloutFailed, roll_out


class ServeTarget(Config):
    model: str = Field(description="Registered model name.")
    alias: str = Field(description="Alias, exactly as in MLflow.")
    version: int = Field(
        default=0, description="Version the sensor saw (0: none); the run serves the one the alias names when it runs."
    )
    seen_from: int = Field(default=0, description="Version the alias held before (0: none), for the history.")
    reason: str = Field(default="alias changed")


@op(retry_policy=RetryPolicy(max_retries=1, delay=5))
@masks_credentials
def reconcile_server(
    context: OpExecutionContext,
    config: ServeTarget,
    mlflow: MlflowTracking,
    app_db: AppDatabase,
    serving: ServingResource,
) -> None:
    registry = mlflow.registry()
    # The version the alias names now, not the one the sensor saw: a run that started late (behind a switch the
    # moving process made itself, or behind a busy queue) must not bring back a version the alias has left.
    current = registry.alias_version(config.model, config.alias)
    version = int(current.version) if current else None
    if version != (config.version or None):
        context.log.info(f"{config.model}@{config.alias} moved to v{version} since v{config.version} was seen")
    try:
        outcome = roll_out(
            registry,
            app_db.engine,
            serving.open(),
            config.model,
            config.alias,
            version,
            config.seen_from or None,
            f"dagster run {context.run_id}",
        )
    except RolloutFailed as exc:
        raise Failure(mask(str(exc)), allow_retries=False) from None
    context.log.info(
        f"{outcome.name}: {outcome.action} (version {outcome.version}, {outcome.address}); {config.reason}"
    )
    log_event(
        context.log,
        f"serving_{outcome.action}",
        model=config.model,
        alias=config.alias,
        version=outcome.version,
        run_id=context.run_id,
        address=outcome.address,
        reason=config.reason,
    )


@job(
    description="Serve one model@alias at the version the registry names (replaces the old autoserve watcher).",
    # One op: run it in the run's own process. A step subprocess would import the code location a second time,
    # several seconds of every switch.
    executor_def=in_process_executor,
)
def serving_job():
    reconcile_server()
