"""production_alias: the promotion gate between the candidate and the current production version."""

import pandas as pd
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from mlplatform.appdb.datasets import require_latest
from mlplatform.assets.candidate_model import candidate_model
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.masking import masks_credentials
from mlplatform.plots import frame_table
from mlplatform.quality.holdout import evaluate_held_out, trained_model
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.retraining import with_retrain_reason
from mlplatform.serving.rollout import move_and_serve
from mlplatform.training.promotion import decide


class PromotionConfig(Config):
    margin: float = Field(default=0.0, description="How much the candidate must beat production by to be promoted.")


@asset(
    partitions_def=dataset_partitions,
    deps=[candidate_model],
    group_name="lifecycle",
    kinds={"mlflow"},
    description="The production alias: moved to the candidate only if it beats production on the same held-out rows.",
)
@masks_credentials
def production_alias(
    context: AssetExecutionContext,
    config: PromotionConfig,
    app_db: AppDatabase,
    mlflow: MlflowTracking,
    serving: ServingResource,
) -> MaterializeResult:
    engine = app_db.engine
    registry = mlflow.registry()
    aliases = registry.aliases
    model_name = registry.model_name(context.partition_key)
    candidate = trained_model(engine, registry, registry.require_alias(model_name, aliases.candidate))
    current = registry.alias_version(model_name, aliases.production)
    production = (
        trained_model(engine, registry, current) if current and current.version != candidate.version.version else None
    )

    models = [candidate] + ([production] if production else [])
    evaluation = evaluate_held_out(engine, require_latest(engine, context.partition_key), models)
    dataset, metric = evaluation.dataset, evaluation.metric
    candidate_score = evaluation.scores[0]
    if candidate_score is None:
        raise ValueError(f"candidate v{candidate.number} cannot score dataset {dataset.name} v{dataset.version}")
    production_score = evaluation.scores[1] if production else None

    decision = decide(
        metric,
        candidate_score,
        production_score,
        config.margin,
        candidate.number,
        int(current.version) if current else None,
    )
    served = None
    if decision.promote:  # a served Production switches now, in this run (a failed switch rolls back and raises)
        _, served = move_and_serve(
            registry,
            engine,
            serving,
            model_name,
            aliases.production,
            candidate.number,
            f"dagster run {context.run_id}",
            with_retrain_reason(context.run.tags, decision.reason),
        )
    production_version = candidate.number if decision.promote or current is None else int(current.version)
    context.log.info(f"{model_name}: {'promoted' if decision.promote else 'kept production'} ({decision.reason})")
    return MaterializeResult(
        metadata={
            "verdict": MetadataValue.md(_verdict(decision, model_name, aliases.production, candidate.number, current)),
            "model_name": model_name,
            "alias": aliases.production,
            "promoted": decision.promote,
            "reason": decision.reason,
            "metric": metric,
            "candidate_version": candidate.number,
            "candidate_score": candidate_score,
            "production_version": production_version,
            "previous_production_version": int(current.version) if current else None,
            "previous_production_score": production_score,
            "margin": config.margin,
            "serving": f"{served.action} at {served.address}" if served else "left to the alias sensor",
            "held_out_rows": evaluation.held_out_rows,
            "decision": MetadataValue.json(decision.as_dict()),
            "scores": frame_table(
                _scores(metric, evaluation.held_out_rows, candidate.number, candidate_score, current, production_score)
            ),
        }
    )


def _verdict(decision, model_name: str, alias: str, candidate_version: int, current) -> str:
    """The promotion decision in one sentence, for the asset's page."""
    if decision.promote:
        action = f"**Promoted**: `{model_name}` v{candidate_version} now has the `{alias}` alias"
    else:
        kept = f"`{alias}` stays on `{model_name}` v{int(current.version)}"
        action = f"**Kept**: {kept}, candidate v{candidate_version} not promoted"
    return f"{action}. Reason: {decision.reason}."


def _scores(
    metric: str, rows: int, candidate_version: int, candidate_score: float, current, production_score
) -> pd.DataFrame:
    """Candidate and production side by side on the same held-out rows."""
    scores = [{"model": "candidate", "version": candidate_version, metric: candidate_score, "held_out_rows": rows}]
    if current is not None:
        scores.append(
            {
                "model": "production (before)",
                "version": int(current.version),
                metric: production_score,
                "held_out_rows": rows,
            }
        )
    return pd.DataFrame(scores)
