"""The platform exporter's collector over real stores (an empty embedded home, and one whose app-db cannot be
opened): every store read, reads cached, a failing store reported instead of raising; bounded actor kinds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from mlplatform.exporter.readings import actor_kind
from mlplatform.exporter.server import platform_collector

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
