"""The platform exporter's collector over real stores (an empty embedded home, and one whose app-db cannot be
opened): every store read, reads cached, a failing store reported instead of raising; bounded actor kinds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest

from mlplatform.exporter.readings import actor_kind, report_metrics
from mlplatform.exporter.server import platform_collector
from mlplatform.model_registry import AliasNames

from conftest import embedded_settings


def _samples(collector) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_empty_home_reads_every_store_once_per_cache_period(platform_home):
    collector = platform_collector(platform_home)
    first = _samples(collector)
    for source in ("mlflow", "appdb", "dagster", "serving"):
        assert first[("mlplatform_exporter_source_up", (("source", source),))] == 1.0, source
    assert first[("mlplatform_registered_models", ())] == 0
    assert ("mlplatform_asset_schedule_interval_seconds", (("asset", "predictions"),)) in first
    second = _samples(collector)  # within the 30 s cache: no new read
    assert first[("mlplatform_exporter_reads_total", ())] == second[("mlplatform_exporter_reads_total", ())] == 1
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    assert b"mlplatform_exporter_source_up" in generate_latest(registry)


def test_a_store_that_cannot_be_read_is_reported_not_raised(tmp_path, migrated_mlflow_store):
    settings = embedded_settings(
        tmp_path / "home", migrated_mlflow_store, APP_DB_URI=f"sqlite:///{tmp_path}/missing/folder/app.db"
    )
    samples = _samples(platform_collector(settings))
    assert samples[("mlplatform_exporter_source_up", (("source", "appdb"),))] == 0.0
    assert samples[("mlplatform_exporter_source_errors_total", (("source", "appdb"),))] == 1.0
    assert samples[("mlplatform_exporter_source_up", (("source", "mlflow"),))] == 1.0
    assert not [name for name, _ in samples if name.startswith("mlplatform_monitoring_")]


def test_actor_kinds_are_bounded():
    assert actor_kind("dagster run 3f2a") == "dagster"
    assert actor_kind("cli:alice") == "cli"
    assert actor_kind("mlflow registry") == "registry"
    assert actor_kind("mlplatform demo") == "demo"
    assert actor_kind("someone's script") == "other"


def test_drift_rows_are_read_as_stored_old_and_new_keys():
    """Rows with only ks_* keys, and rows that name their test (chi2 for a categorical feature, NaN where a value
    was not measured) with extra keys: each value under its test, NaN and unknown keys left out."""
    report = {
        "dataset": "shop",
        "model_name": "mlplatform_shop",
        "metric": "accuracy",
        "production_score": 0.9,
        "production_version": 2,
        "candidate_score": 0.8,
        "candidate_version": 3,
        "held_out_rows": 40,
        "created_at": datetime(2026, 11, 28, tzinfo=UTC),
        "drift": [
            {"feature": "price", "ks_statistic": 0.4, "ks_pvalue": 0.001, "psi": 0.5, "drifted": True},
            {
                "feature": "colour",
                "kind": "categorical",
                "test": "chi2",
                "ks_statistic": math.nan,
                "ks_pvalue": 0.2,
                "psi": 0.01,
                "new_categories": 1,
                "drifted": False,
            },
        ],
    }
    families = report_metrics([report], AliasNames("Production", "challenger"))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    key = (("dataset", "shop"), ("model", "mlplatform_shop"))

    def labelled(**labels):
        return tuple(sorted({**dict(key), **labels}.items()))

    assert samples[("mlplatform_feature_drift_pvalue", labelled(feature="colour", test="chi2"))] == 0.2
    assert samples[("mlplatform_feature_drift_pvalue", labelled(feature="price", test="ks"))] == 0.001
    assert ("mlplatform_feature_drift_statistic", labelled(feature="colour", test="chi2")) not in samples  # NaN
    assert samples[("mlplatform_feature_drifted", labelled(feature="price"))] == 1.0
    candidate = labelled(role="candidate", alias="challenger", metric="accuracy")
    assert samples[("mlplatform_monitoring_score", candidate)] == 0.8
    assert not [name for name, _ in samples if "new_categories" in name or "kind" in name]
