"""What the exporter reads from each store, as Prometheus metric families. One function per source, each a few
cheap queries; labels are bounded (dataset, model, alias, feature, role, asset, metric, test, actor_kind), never a
run id, a batch id or a row.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine, func, select

from mlplatform.appdb.schema import alias_history, dataset_versions, monitoring_reports, predictions
from mlplatform.assets.jobs import CRON, JOBS
from mlplatform.assets.partitions import DATASET_PARTITIONS
from mlplatform.model_registry import AliasNames
from mlplatform.serving.state import ServingState

CRON_SECONDS = {"@hourly": 3600, "@daily": 86_400, "@weekly": 7 * 86_400}
ACTOR_KINDS = (
    ("dagster run", "dagster"),
    ("cli:", "cli"),
    ("mlflow registry", "registry"),
    ("mlplatform demo", "demo"),
)


def _gauge(name: str, documentation: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"mlplatform_{name}", documentation, labels=list(labels))


def _number(value) -> bool:
    """A stored number (NaN marks "not measured" in drift rows)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _seconds(moment: datetime) -> float:
    """app-db timestamps: aware on PostgreSQL, naive UTC on SQLite."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# ---------------------------------------------------------------------------------------------------------- MLflow


def registry_metrics(models: Iterable[RegisteredModel], versions: Iterable[ModelVersion]) -> list[Metric]:
    """Registered models, versions per model, and the version each alias names (``ModelRegistry``'s iterators go
    through every page of the registry)."""
    registered = _gauge("registered_models", "Registered models in the MLflow registry", [])
    per_model = _gauge("model_versions", "Registered versions of the model", ["model"])
    aliases = _gauge("model_alias_version", "Version the alias names in the registry", ["model", "alias"])
    count = Counter(version.name for version in versions)
    total = 0
    for model in models:
        total += 1
        per_model.add_metric([model.name], count.get(model.name, 0))
        for alias, version in (model.aliases or {}).items():
            aliases.add_metric([model.name, alias], int(version))
    registered.add_metric([], total)
    return [registered, per_model, aliases]


# ---------------------------------------------------------------------------------------------------------- app-db


def appdb_metrics(engine: Engine, aliases: AliasNames) -> list[Metric]:
    with engine.connect() as conn:
        reports = conn.execute(_latest_reports()).mappings().all()
        batches = conn.execute(
            select(
                predictions.c.batch_id,
                predictions.c.model_role,
                func.min(predictions.c.dataset).label("dataset"),
                func.min(predictions.c.model_name).label("model"),
                func.count().label("rows"),
                func.max(predictions.c.created_at).label("created_at"),
            ).group_by(predictions.c.batch_id, predictions.c.model_role)
        ).all()
        changes = conn.execute(
            select(alias_history.c.model_name, alias_history.c.alias, alias_history.c.actor, func.count()).group_by(
                alias_history.c.model_name, alias_history.c.alias, alias_history.c.actor
            )
        ).all()
        datasets = conn.execute(
            select(dataset_versions.c.name, func.max(dataset_versions.c.version)).group_by(dataset_versions.c.name)
        ).all()
    return [
        *report_metrics(reports, aliases),
        *prediction_metrics(batches),
        alias_change_metrics(changes),
        dataset_metrics(datasets),
    ]


def dataset_metrics(datasets) -> Metric:
    """(name, newest version) per dataset."""
    latest = _gauge("dataset_latest_version", "Newest version of the dataset in app-db", ["dataset"])
    for name, version in datasets:
        latest.add_metric([name], version)
    return latest


def _latest_reports():
    newest = (
        select(func.max(monitoring_reports.c.id).label("id"))
        .group_by(monitoring_reports.c.dataset, monitoring_reports.c.model_name)
        .subquery()
    )
    return select(monitoring_reports).join(newest, monitoring_reports.c.id == newest.c.id)


def report_metrics(reports, aliases: AliasNames) -> list[Metric]:
    """The latest monitoring report of each dataset and model: scores, versions and drift per feature. Drift rows
    are read as stored: every ``<test>_statistic`` / ``<test>_pvalue`` key, ``psi`` and ``drifted``; other keys are
    ignored, so new drift tests appear without a change here; a row's ``test`` key, when stored, names the test of
    its statistic and p-value. Scores carry the alias of their role (production:
    the production alias, candidate: the candidate alias)."""
    key = ["dataset", "model"]
    score = _gauge(
        "monitoring_score", "Held-out score of the latest monitoring report", [*key, "role", "alias", "metric"]
    )
    version = _gauge("monitoring_model_version", "Version scored by the latest monitoring report", [*key, "role"])
    rows = _gauge("monitoring_held_out_rows", "Held-out rows of the latest monitoring report", key)
    created = _gauge("monitoring_report_timestamp_seconds", "When the latest monitoring report was written", key)
    features = _gauge("monitoring_features", "Features checked for drift in the latest report", key)
    statistic = _gauge("feature_drift_statistic", "Drift test statistic per feature", [*key, "feature", "test"])
    pvalue = _gauge("feature_drift_pvalue", "Drift test p-value per feature", [*key, "feature", "test"])
    psi = _gauge("feature_drift_psi", "Population stability index per feature", [*key, "feature"])
    drifted = _gauge("feature_drifted", "1 when the latest report found the feature drifted", [*key, "feature"])
    for report in reports:
        labels = [report["dataset"], report["model_name"]]
        score.add_metric([*labels, "production", aliases.production, report["metric"]], report["production_score"])
        version.add_metric([*labels, "production"], report["production_version"])
        if report["candidate_score"] is not None:
            score.add_metric([*labels, "candidate", aliases.candidate, report["metric"]], report["candidate_score"])
            version.add_metric([*labels, "candidate"], report["candidate_version"])
        rows.add_metric(labels, report["held_out_rows"])
        created.add_metric(labels, _seconds(report["created_at"]))
        features.add_metric(labels, len(report["drift"]))
        for row in report["drift"]:
            feature = [*labels, str(row["feature"])]
            for name, value in row.items():
                if not _number(value):
                    continue
                for suffix, family in (("_statistic", statistic), ("_pvalue", pvalue)):
                    if name.endswith(suffix):  # the row's own "test" names it when present (ks, chi2, ...)
                        family.add_metric([*feature, str(row.get("test") or name.removesuffix(suffix))], float(value))
            if _number(row.get("psi")):
                psi.add_metric(feature, float(row["psi"]))
            drifted.add_metric(feature, 1.0 if row.get("drifted") else 0.0)
    return [score, version, rows, created, features, statistic, pvalue, psi, drifted]


def prediction_metrics(batches) -> list[Metric]:
    """Per dataset, model and role: rows of the newest batch, batches and rows stored, when the newest was written."""
    key = ["dataset", "model", "role"]
    latest_rows = _gauge("predictions_latest_batch_rows", "Rows predicted in the newest batch", key)
    latest_time = _gauge("predictions_latest_batch_timestamp_seconds", "When the newest batch was predicted", key)
    batch_count = _gauge("prediction_batches", "Prediction batches stored in app-db", key)
    row_count = _gauge("predicted_rows", "Prediction rows stored in app-db, all batches", key)
    grouped: dict[tuple, list] = defaultdict(list)
    for batch in batches:
        grouped[(batch.dataset, batch.model, batch.model_role)].append(batch)
    for labels, items in sorted(grouped.items()):
        newest = max(items, key=lambda b: _seconds(b.created_at))
        latest_rows.add_metric(list(labels), newest.rows)
        latest_time.add_metric(list(labels), _seconds(newest.created_at))
        batch_count.add_metric(list(labels), len(items))
        row_count.add_metric(list(labels), sum(b.rows for b in items))
    return [latest_rows, latest_time, batch_count, row_count]


def actor_kind(actor: str) -> str:
    """``dagster run <id>`` -> ``dagster``, ``cli:<user>`` -> ``cli``, ...: a bounded label for who moved an alias."""
    return next((kind for prefix, kind in ACTOR_KINDS if actor.startswith(prefix)), "other")


def alias_change_metrics(changes) -> Metric:
    total = CounterMetricFamily(
        "mlplatform_alias_changes", "Alias changes recorded in app-db", labels=["model", "alias", "actor_kind"]
    )
    counts: Counter = Counter()
    for model, alias, actor, count in changes:
        counts[(model, alias, actor_kind(actor))] += count
    for labels, count in sorted(counts.items()):
        total.add_metric(list(labels), count)
    return total


# ---------------------------------------------------------------------------------------------------------- Dagster


def asset_schedule_seconds() -> dict[str, int]:
    """Each lifecycle asset -> the interval of the schedule of the job that materializes it."""
    return {
        key.path[-1]: CRON_SECONDS[CRON[job.name]]
        for job in JOBS
        for key in job.selection.selected_keys  # type: ignore[attr-defined]  # jobs select assets by key
    }


def dagster_metrics(instance: DagsterInstance, schedule: dict[str, int]) -> list[Metric]:
    """The last successful materialization of each asset for each dataset partition, and its schedule."""
    interval = _gauge(
        "asset_schedule_interval_seconds", "Interval of the schedule that materializes the asset", ["asset"]
    )
    last = _gauge(
        "asset_last_materialization_timestamp_seconds", "Last successful materialization", ["dataset", "asset"]
    )
    age = _gauge(
        "asset_materialization_age_seconds", "Seconds since the last successful materialization", ["dataset", "asset"]
    )
    now = time.time()
    for asset, seconds in sorted(schedule.items()):
        interval.add_metric([asset], seconds)
        for dataset in instance.get_dynamic_partitions(DATASET_PARTITIONS):
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[dataset]), limit=1
            ).records
            if records:
                last.add_metric([dataset, asset], records[0].timestamp)
                age.add_metric([dataset, asset], max(0.0, now - records[0].timestamp))
    return [interval, last, age]


# --------------------------------------------------------------------------------------------------------- serving


def serving_metrics(state: ServingState) -> list[Metric]:
    """The version each model@alias gateway routes to now (the serving backends' records)."""
    served = _gauge("served_version", "Version the model@alias gateway serves", ["model", "alias"])
    for record in sorted(state.read().values(), key=lambda r: r.name):
        if record.upstream is not None:
            served.add_metric([record.model, record.alias], record.upstream.version)
    return [served]
