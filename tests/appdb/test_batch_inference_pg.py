"""Batch inference on a real PostgreSQL app-db: binary COPY, whole batches, shadow inference, crash safety."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc, select

from mlplatform.appdb.datasets import require_latest
from mlplatform.appdb.predictions import count_batch, read_batch
from mlplatform.appdb.schema import predictions
from mlplatform.inference import batch_id, identity, run_batch
from mlplatform.quality.holdout import trained_model

from conftest import Lifecycle
from hooked_model import OnChunk


def _terminate_the_copy(app_db_url: str) -> None:
    """Have PostgreSQL terminate the connection that is COPYing the batch."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'COPY predictions%%' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed == [(True,)]


def _trained(lifecycle, dataset: str):
    lifecycle.load(dataset)
    lifecycle.run("training_job", dataset)
    registry = lifecycle.registry()
    model = trained_model(lifecycle.engine, registry, registry.require_alias(f"mlplatform_{dataset}", "Production"))
    return model, require_latest(lifecycle.engine, dataset)


def test_a_connection_killed_mid_batch_leaves_the_previous_batch_and_a_rerun_writes_it_once(pg_lifecycle):
    lifecycle = pg_lifecycle
    model, dataset = _trained(lifecycle, "breast_cancer")
    batch = batch_id(dataset, model)
    first = identity(batch, "production", dataset, model, "Production")
    assert run_batch(lifecycle.engine, dataset, model.model, model.dataset.features, first, chunk_rows=100) == 569
    before = read_batch(lifecycle.engine, batch)

    killer = OnChunk(model.model, 3, lambda: _terminate_the_copy(lifecycle.settings.app_db_uri))
    second = identity(batch, "production", dataset, model, "Production")
    with pytest.raises(exc.OperationalError):
        run_batch(lifecycle.engine, dataset, killer, model.dataset.features, second, chunk_rows=100)
    after_crash = read_batch(lifecycle.engine, batch)
    assert len(after_crash) == 569
    assert (after_crash["created_at"] == before["created_at"]).all()  # untouched: the half-written batch rolled back

    assert run_batch(lifecycle.engine, dataset, model.model, model.dataset.features, second, chunk_rows=100) == 569
    rerun = read_batch(lifecycle.engine, batch)
    assert len(rerun) == 569 and rerun["row_id"].is_unique
    assert (rerun["created_at"] > before["created_at"]).all()
    assert rerun["predicted_class"].tolist() == before["predicted_class"].tolist()


def test_shadow_inference_shares_the_batch_without_touching_production_rows(pg_lifecycle):
    lifecycle = pg_lifecycle
    lifecycle.load("wine")
    lifecycle.run("training_job", "wine")
    lifecycle.run("training_job", "wine")  # v2 is the challenger; production stays v1
    lifecycle = Lifecycle(lifecycle.settings.model_copy(update={"shadow_alias": "challenger"}))
    first = lifecycle.metadata(lifecycle.run("inference_job", "wine"), "predictions")
    second = lifecycle.metadata(lifecycle.run("inference_job", "wine"), "predictions")
    assert first["batch_id"] == second["batch_id"] == "wine-v1-mlplatform_wine-v1"
    assert (second["rows_written"], second["shadow_rows_written"], second["shadow_version"]) == (178, 178, 2)
    production = read_batch(lifecycle.engine, second["batch_id"], "production")
    shadow = read_batch(lifecycle.engine, second["batch_id"], "shadow")
    assert len(production) == len(shadow) == 178
    assert set(production["model_version"]) == {1} and set(production["model_alias"]) == {"Production"}
    assert set(shadow["model_version"]) == {2} and set(shadow["model_alias"]) == {"challenger"}
    with lifecycle.engine.connect() as conn:
        assert len(conn.execute(select(predictions.c.row_id)).all()) == 356


def test_stored_rows_and_predictions_round_trip_exactly(pg_lifecycle):
    lifecycle = pg_lifecycle
    model, dataset = _trained(lifecycle, "iris")
    batch = batch_id(dataset, model)
    run_batch(
        lifecycle.engine,
        dataset,
        model.model,
        model.dataset.features,
        identity(batch, "production", dataset, model, "Production"),
        chunk_rows=7,
    )
    rows = read_batch(lifecycle.engine, batch)
    from mlplatform.appdb.datasets import read_rows

    frame = read_rows(lifecycle.engine, dataset)
    expected = model.model.predict(frame[model.dataset.features]).astype(str)
    assert rows["predicted_class"].tolist() == expected.tolist()
    probabilities = model.model.predict_proba(frame[model.dataset.features])
    assert all(list(p) == pytest.approx(list(q), abs=0) for p, q in zip(rows["probabilities"], probabilities))
    assert count_batch(lifecycle.engine, batch) == 150
