"""``mlplatform bench load``: loading a CSV with numeric and categorical columns and gaps into a PostgreSQL app-db.

One run writes a generated CSV of N rows, then times on the same file: (a) the platform path (read, validate, type,
content-hash and COPY, of the file as written or of binary rows, in one transaction) in a fresh process, so its peak
RSS is its own; (b) pandas ``read_csv`` + ``to_sql``; (c) the old stack's load, each row a JSONB document through
SQLAlchemy's ORM (timed on at most ``OLD_STACK_ROWS`` rows: it is the slowest by far); and (d) the ceiling, the
server's own ``COPY ... FROM STDIN (FORMAT csv)`` of the file. Then (e) the monitoring report over the loaded version,
in a fresh process too (``monitoring_peak_rss_mb``), with a HistGradientBoosting model fitted on its first
``MODEL_ROWS`` rows as production.
"""

from __future__ import annotations

import csv
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from sqlalchemy import JSON, Column, Engine, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session

from mlplatform.appdb.datasets import iter_feature_chunks, latest_version, store_dataset
from mlplatform.appdb.engine import engine_for, psycopg_connection
from mlplatform.bench.app_db import postgresql_engine
from mlplatform.datasets.sources import SourceRequest, read_request
from mlplatform.monitoring import build_report
from mlplatform.quality.holdout import TrainedModel
from mlplatform.training.candidates import candidate_pipelines
from mlplatform.training.split import SplitSpec

CHUNK_ROWS = 100_000
OLD_STACK_ROWS = 100_000
MODEL_ROWS = 20_000  # the monitored model is fitted on this many rows (the report is over the whole table)
COLUMNS = "amount,quantity,channel,region,member,label"
DATASET = "bench_load"


class OldStackBase(DeclarativeBase):
    """The old stack's ORM models."""


class OldStackRow(OldStackBase):
    """The old stack's dataset row: the whole CSV row as a JSONB document, one ORM mapping per row."""

    __tablename__ = "bench_old_stack_rows"
    id = Column(Integer, primary_key=True)
    dataset = Column(String(64))
    data = Column(JSON().with_variant(JSONB, "postgresql"))


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Two numeric columns (5 % gaps), three categorical ones (one a boolean, gaps), a three-class label."""
    rng = np.random.default_rng(seed)
    channels = np.array(["web", "store", "phone", "partner", ""], dtype=object)
    regions = np.array([f"region_{i:02d}" for i in range(20)], dtype=object)
    with path.open("w") as handle:
        handle.write(COLUMNS + "\n")
        for start in range(0, rows, CHUNK_ROWS):
            size = min(CHUNK_ROWS, rows - start)
            amount = rng.gamma(2.0, 40.0, size).round(2)
            frame = pd.DataFrame(
                {
                    "amount": np.where(rng.random(size) < 0.05, np.nan, amount),
                    "quantity": np.where(rng.random(size) < 0.05, np.nan, rng.integers(1, 50, size)),
                    "channel": channels[rng.integers(0, 5, size)],
                    "region": regions[rng.integers(0, 20, size)],
                    "member": np.where(rng.random(size) < 0.5, "true", "false"),
                    "label": (amount > 60).astype(int) + (rng.random(size) < 0.3),
                }
            )
            frame.to_csv(handle, header=False, index=False)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _platform(uri: str, path: str, queue) -> None:
    engine = engine_for(uri)
    started = time.perf_counter()
    stored = store_dataset(engine, read_request(SourceRequest(path, "label", DATASET)))
    queue.put({"rows": stored.rows, "seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb()})


def _monitoring(uri: str, model_path: str, queue) -> None:
    """The monitoring report over the loaded version, production being a model recorded as trained on it."""
    engine = engine_for(uri)
    dataset = latest_version(engine, DATASET)
    assert dataset is not None
    tags = [
        ModelVersionTag(k, v) for k, v in {**SplitSpec().as_tags(), "metric": "accuracy", "metric_value": "0.5"}.items()
    ]
    production = TrainedModel(ModelVersion(DATASET, "1", 0, tags=tags), joblib.load(model_path), dataset)
    started = time.perf_counter()
    report = build_report(engine, dataset, production, None)
    queue.put({"rows": report.held_out_rows, "seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb()})


def _in_fresh_process(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _production_model(engine: Engine, folder: str) -> str:
    """HistGradientBoosting fitted on the first rows of the loaded version, saved for the monitoring process."""
    dataset = latest_version(engine, DATASET)
    assert dataset is not None
    sample = next(iter_feature_chunks(engine, dataset, [c["name"] for c in dataset.columns], MODEL_ROWS))
    numeric = [f for f, k in dataset.kinds.items() if k == "numeric"]
    categorical = [f for f, k in dataset.kinds.items() if k == "categorical"]
    model = candidate_pipelines("classification", 0, numeric, categorical, len(sample))["hist_gradient_boosting"]
    model.fit(sample[dataset.features], sample[dataset.target_column])
    path = str(Path(folder) / "production.joblib")
    joblib.dump(model, path)
    return path


def _to_sql(engine: Engine, path: Path) -> float:
    started = time.perf_counter()
    frame = pd.read_csv(path)
    frame.to_sql("bench_load_to_sql", engine, if_exists="replace", index=False, chunksize=10_000)
    return time.perf_counter() - started


def _old_stack(engine: Engine, path: Path, rows: int) -> float:
    OldStackBase.metadata.drop_all(engine)
    OldStackBase.metadata.create_all(engine)
    started = time.perf_counter()
    with path.open() as handle:
        reader = csv.DictReader(handle)
        mappings = [{"dataset": DATASET, "data": row} for row, _ in zip(reader, range(rows))]
    with Session(engine) as session, session.begin():
        session.bulk_insert_mappings(OldStackRow, mappings)
    return time.perf_counter() - started


def _ceiling(engine: Engine, path: Path) -> float:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_load_ceiling"))
        conn.execute(
            text(
                "CREATE TABLE bench_load_ceiling (amount float8, quantity float8, channel text, region text, "
                "member text, label int8)"
            )
        )
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        with psycopg_connection(raw).cursor() as cursor:
            with cursor.copy(f"COPY bench_load_ceiling ({COLUMNS}) FROM STDIN (FORMAT csv, HEADER)") as copy:
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        copy.write(block)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def bench_load(uri: str, rows: int, only_platform: bool = False) -> dict:
    engine = postgresql_engine(uri, "load")
    _cleanup(engine)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_load.csv"
        write_csv(path, rows)
        platform = _in_fresh_process(_platform, uri, str(path))
        monitoring = _in_fresh_process(_monitoring, uri, _production_model(engine, folder))
        report = {
            "rows": rows,
            "platform_seconds": round(platform["seconds"], 3),
            "platform_rows_per_s": round(platform["rows"] / platform["seconds"]),
            "platform_peak_rss_mb": round(platform["peak_rss_mb"], 1),
            "monitoring_seconds": round(monitoring["seconds"], 3),
            "monitoring_rows_scored": monitoring["rows"],
            "monitoring_peak_rss_mb": round(monitoring["peak_rss_mb"], 1),
        }
        if not only_platform:
            old_rows = min(rows, OLD_STACK_ROWS)
            report |= {
                "to_sql_rows_per_s": round(rows / _to_sql(engine, path)),
                "old_stack_rows_per_s": round(old_rows / _old_stack(engine, path, old_rows)),
                "old_stack_rows_timed": old_rows,
                "ceiling_rows_per_s": round(rows / _ceiling(engine, path)),
            }
            report |= {
                "platform_vs_old_stack": round(report["platform_rows_per_s"] / report["old_stack_rows_per_s"], 2),
                "platform_vs_ceiling": round(report["platform_rows_per_s"] / report["ceiling_rows_per_s"], 2),
            }
    _cleanup(engine)
    return report


def _cleanup(engine: Engine) -> None:
    stored = latest_version(engine, DATASET)
    with engine.begin() as conn:
        for table in ("bench_load_to_sql", "bench_load_ceiling", OldStackRow.__tablename__):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
        if stored is not None:
            conn.execute(text(f'DROP TABLE IF EXISTS "{stored.table_name}"'))
            conn.execute(text("DELETE FROM dataset_versions WHERE name = :n"), {"n": DATASET})
