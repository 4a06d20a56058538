"""The embedded home's MLflow store starts as a copy of a template migrated once, and nothing else is touched."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from mlplatform.settings import Settings
from mlplatform.tracking_store import prepare_embedded_store


def _embedded(home) -> Settings:
    return Settings.from_mapping({"MLPLATFORM_HOME": str(home)})


def test_a_new_home_gets_a_migrated_store_from_the_template_made_once(tmp_path):
    cache = tmp_path / "cache"
    first = _embedded(tmp_path / "one")
    prepare_embedded_store(first, cache)
    [template] = cache.glob("mlflow-*.db")
    made = template.stat().st_mtime_ns
    client = MlflowClient(first.mlflow_tracking_uri)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    client.create_experiment("kept")

    second = _embedded(tmp_path / "two")
    prepare_embedded_store(second, cache)
    assert template.stat().st_mtime_ns == made  # copied, not migrated again
    assert [e.name for e in MlflowClient(second.mlflow_tracking_uri).search_experiments()] == ["Default"]

    prepare_embedded_store(first, cache)  # an existing store is never replaced
    assert "kept" in [e.name for e in MlflowClient(first.mlflow_tracking_uri).search_experiments()]


def test_a_store_the_user_named_is_never_created(tmp_path):
    other = tmp_path / "elsewhere.db"
    settings = Settings.from_mapping(
        {"MLPLATFORM_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": f"sqlite:///{other}"}
    )
    prepare_embedded_store(settings, tmp_path / "cache")
    assert not other.exists() and not (tmp_path / "home" / "mlflow.db").exists()
    assert not (tmp_path / "cache").exists()


def test_a_cache_that_cannot_be_written_leaves_the_migration_to_mlflow(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache folder should be")  # refused even to root, unlike a folder's mode
    settings = _embedded(tmp_path / "home")
    prepare_embedded_store(settings, cache)
    assert not (settings.home / "mlflow.db").exists()
    assert [e.name for e in MlflowClient(settings.mlflow_tracking_uri).search_experiments()] == ["Default"]
