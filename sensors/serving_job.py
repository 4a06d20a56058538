"""serving_job: one run per alias change or repair, reconciling one model@alias (logged, retried, in the UI)."""

from dagster import Config, Failure, OpExecutionContext, RetryPolicy, job, op
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
    version: int = Field(default=0, description="Version to serve; 0 stops the model@alias server.")
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
    try:
        outcome = roll_out(
            mlflow.registry(),
            app_db.engine,
            serving.open(),
            config.model,
            config.alias,
            config.version or None,
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


@job(description="Serve one model@alias at the version the registry names (replaces the old autoserve watcher).")
def serving_job():
    reconcile_server()
