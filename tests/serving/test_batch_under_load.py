"""Batch inference while the served model is under load: the batch still writes every row exactly once.

Real processes throughout: Production served as the sensor's runs serve it (a scoring server behind the gateway),
keep-alive clients posting to the gateway for as long as the ``predictions`` batch runs, and app-db on PostgreSQL
(binary COPY). The load is answered before, during and after the batch; no figure of it is asserted.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import distinct, func, select

from mlplatform.appdb.datasets import require_latest
from mlplatform.appdb.schema import predictions
from mlplatform.bench.http_load import Tally, until_stopped
from mlplatform.contract import load_sample_input
from mlplatform.serving.reconcile import stop
from mlplatform.serving.rollout import roll_out
from mlplatform.serving.scoring_client import invocation_body

MODEL, ALIAS, CLIENTS = "mlplatform_iris", "Production", 4


def _answered_more_than(tally: Tally, count: int, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while len(tally.latencies) <= count and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(tally.latencies) > count


def test_a_batch_run_while_the_gateway_is_under_load_writes_every_row_once(pg_lifecycle):
    lifecycle = pg_lifecycle
    lifecycle.load("iris")
    lifecycle.run("training_job", "iris")
    registry, backend = lifecycle.registry(), lifecycle.serving()
    production = registry.require_alias(MODEL, ALIAS)
    served = roll_out(registry, lifecycle.engine, backend, MODEL, ALIAS, int(production.version), None, "test")
    body = invocation_body(load_sample_input(registry, production.run_id).head(1))
    stopping, tally = threading.Event(), Tally()
    load = threading.Thread(target=until_stopped, args=(served.address, body, CLIENTS, stopping, tally))
    load.start()
    try:
        assert _answered_more_than(tally, 0), tally.first_error
        before = len(tally.latencies)
        predicted = lifecycle.metadata(lifecycle.run("inference_job", "iris"), "predictions")
        assert _answered_more_than(tally, before), "the gateway answered nothing while the batch ran"
    finally:
        stopping.set()
        load.join()
        stop(backend, MODEL, ALIAS)

    assert tally.errors == 0, tally.first_error
    dataset = require_latest(lifecycle.engine, "iris")
    with lifecycle.engine.connect() as conn:
        rows, distinct_rows = conn.execute(
            select(func.count(), func.count(distinct(predictions.c.row_id))).where(
                predictions.c.batch_id == predicted["batch_id"]
            )
        ).one()
        every_batch = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
    assert predicted["rows_written"] == rows == distinct_rows == every_batch == dataset.rows == 150
