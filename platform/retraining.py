"""Retraining that starts itself: which dataset needs training and why, and the guard rails that hold it back.

Every trigger is read from stored state, never from an event that could be missed or seen twice:

- ``new_data``: the latest dataset version in app-db is not the one the candidate (``MLFLOW_CANDIDATE_ALIAS``, given
  to every newly trained best model) was trained on;
- ``drift``: the newest monitoring report is about that version and found at least ``drift_min_features``
  drifted features;
- ``quality``: that report scored production more than ``QUALITY_TOLERANCE`` below its validation score.

Drift and quality count only for a version the candidate was not trained on: training again on the rows it has seen
gives the same model (the split and the estimators are seeded), so a gate that keeps production never loops. They
still matter with new data on: they are the only triggers when it is off, and their key names the report, so a new
report asks again after a failed training (a run key is launched once).

Only a dataset trained before is retrained: its first training stays with whoever loaded it (the demo, the UI,
Airflow's ``dag_training``), where its target and metric are chosen, and does not race an automatic one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from mlplatform.appdb.datasets import latest_version
from mlplatform.appdb.reports import latest_report
from mlplatform.model_registry import ModelRegistry
from mlplatform.monitoring import QUALITY_TOLERANCE, quality_holds
from mlplatform.settings import Settings

TRIGGER_TAG = "mlplatform/trigger"  # on the training runs the retrain sensor asks for: new_data | drift | quality
REASON_TAG = "mlplatform/retrain_reason"  # why, in words: "drift on 3 of 7 features in iris v2"
TRIGGERS = ("new_data", "drift", "quality")
DAY_S = 24 * 3600


@dataclass(frozen=True)
class RetrainPolicy:
    on_new_data: bool
    on_drift: bool
    on_quality: bool
    drift_min_features: int
    cooldown_minutes: float
    daily_max: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrainPolicy:
        return cls(
            settings.retrain_on_new_data,
            settings.retrain_on_drift,
            settings.retrain_on_quality,
            settings.retrain_drift_min_features,
            settings.retrain_cooldown_minutes,
            settings.retrain_daily_max,
        )

    @property
    def watching(self) -> tuple[str, ...]:
        """The triggers switched on."""
        return tuple(t for t, on in zip(TRIGGERS, (self.on_new_data, self.on_drift, self.on_quality)) if on)


@dataclass(frozen=True)
class Trigger:
    dataset: str
    kind: str  # one of TRIGGERS
    reason: str
    key: str  # the state it was read from: the run key, so one state asks for one run


def find_trigger(engine: Engine, registry: ModelRegistry, dataset: str, policy: RetrainPolicy) -> Trigger | None:
    """Why ``dataset`` should be trained again now, or None."""
    latest = latest_version(engine, dataset)
    if latest is None:
        return None
    model_name = registry.model_name(dataset)
    candidate = registry.alias_version(model_name, registry.aliases.candidate)
    if candidate is None or candidate.tags.get("dataset_version") == str(latest.version):
        return None
    where, state = f"{dataset} v{latest.version}", f"{dataset}:v{latest.version}"
    report = latest_report(engine, dataset)
    if report is not None and report["dataset_version"] == latest.version:
        drifted, features = len(report["drifted_features"]), len(report["drift"])
        if policy.on_drift and drifted >= policy.drift_min_features:
            reason = f"drift on {drifted} of {features} features in {where}"
            return Trigger(dataset, "drift", reason, f"{state}:drift:report{report['id']}")
        metric, score = report["metric"], report["production_score"]
        validation = float(registry.version(model_name, report["production_version"]).tags["metric_value"])
        if policy.on_quality and not quality_holds(metric, score, validation):
            reason = (
                f"production {metric} {score:.4f} on {where} is more than {QUALITY_TOLERANCE:.0%} off its "
                f"validation {validation:.4f}"
            )
            return Trigger(dataset, "quality", reason, f"{state}:quality:report{report['id']}")
    if policy.on_new_data:
        return Trigger(dataset, "new_data", f"new data: {where}, {latest.rows} rows", f"{state}:new_data")
    return None


def held_back(
    policy: RetrainPolicy,
    in_flight: Sequence[str],
    last_start: float | None,
    starts_in_a_day: Sequence[float],
    now: float | None = None,
) -> str | None:
    """Why a triggered dataset must wait, or None: a training run of it in flight (``in_flight``: run ids), the
    cool-down since its last automatic start (``last_start``), the daily maximum over every dataset's automatic
    starts in the last 24 hours (``starts_in_a_day``, this tick's requests included)."""
    now = time.time() if now is None else now
    if in_flight:
        return f"training run {in_flight[0][:8]} in flight"
    if last_start is not None and now < last_start + policy.cooldown_minutes * 60:
        return f"cool-down until {_clock(last_start + policy.cooldown_minutes * 60)}"
    recent = sorted(s for s in starts_in_a_day if s > now - DAY_S)
    if len(recent) >= policy.daily_max:
        return (
            f"daily max of {policy.daily_max} automatic retrainings reached, next after "
            f"{_clock(recent[-policy.daily_max] + DAY_S)}"
        )
    return None


def with_retrain_reason(run_tags: Mapping[str, str], reason: str) -> str:
    """``reason`` for the alias history, prefixed with why the run was started automatically, if it was."""
    why = run_tags.get(REASON_TAG)
    return f"retrained: {why}; {reason}" if why else reason


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(timestamp))
