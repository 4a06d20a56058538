"""PostgreSQL (app-db) restarted while `predictions` writes a batch: no partial batch, and the next run of the
inference job writes the batch exactly once."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc, func, select

from mlplatform.appdb.datasets import require_latest
from mlplatform.appdb.predictions import count_batch, read_batch
from mlplatform.appdb.schema import predictions
from mlplatform.inference import batch_id, identity, run_batch
from mlplatform.quality.holdout import trained_model

from conftest import Lifecycle, embedded_settings
from hooked_model import OnChunk
from postgres import fresh_database, postgres_cluster

DATASET, ROWS = "iris", 150


def test_a_restart_mid_batch_leaves_no_rows_and_the_next_run_writes_the_batch_once(tmp_path, migrated_mlflow_store):
    with postgres_cluster() as cluster, fresh_database(cluster.admin_url) as url:
        lifecycle = Lifecycle(embedded_settings(tmp_path / "home", migrated_mlflow_store, APP_DB_URI=url))
        try:
            lifecycle.load(DATASET)
            lifecycle.run("training_job", DATASET)
            engine, registry = lifecycle.engine, lifecycle.registry()
            model = trained_model(engine, registry, registry.require_alias(f"mlplatform_{DATASET}", "Production"))
            dataset = require_latest(engine, DATASET)
            batch = batch_id(dataset, model)
            restarting = OnChunk(model.model, 3, cluster.restart)  # two chunks are already in the COPY stream
            who = identity(batch, "production", dataset, model, "Production")
            with pytest.raises((exc.OperationalError, psycopg.OperationalError)):
                run_batch(engine, dataset, restarting, model.dataset.features, who, chunk_rows=20)
            assert restarting.calls >= 3  # restarted mid-batch (the queued COPY reports the loss a chunk or two later)
            assert count_batch(engine, batch) == 0  # the server rolled the half-written batch back

            for _ in range(2):  # the real asset on the same engine (its pooled connections died with the server)
                written = lifecycle.metadata(lifecycle.run("inference_job", DATASET), "predictions")
                assert (written["batch_id"], written["rows_written"]) == (batch, ROWS)
            rows = read_batch(engine, batch)
            assert len(rows) == ROWS and rows["row_id"].is_unique
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(predictions)).scalar_one() == ROWS
        finally:
            lifecycle.instance.dispose()
            lifecycle.engine.dispose()
