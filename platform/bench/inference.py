"""``mlplatform bench inference``: the platform's batch-inference path against the alternatives, on PostgreSQL.

One run generates N labelled rows (20 features, 3 classes) into app-db in chunks, trains a small pipeline, then
times on the same rows and model: (a) the platform path (stream from app-db, predict, binary COPY, one transaction),
(b) pandas ``to_sql``, (c) the old stack's SQLAlchemy ORM ``bulk_insert_mappings`` with the input row as JSONB, and
(d) the ceiling: predict and binary-COPY an in-memory frame, nothing else. (b)-(d) start from rows already in
memory, so their reading is free; (a) pays for its own. (a) runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import JSON, Column, DateTime, Engine, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session

from mlplatform.appdb.datasets import DatasetVersion, iter_feature_chunks, store_chunks
from mlplatform.appdb.engine import engine_for, psycopg_connection
from mlplatform.appdb.predictions import BatchIdentity, PredictedChunk
from mlplatform.appdb.schema import predictions
from mlplatform.bench.app_db import postgresql_engine
from mlplatform.inference import predict_chunk, run_batch

FEATURES = [f"f{i:02d}" for i in range(20)]
CHUNK_ROWS = 100_000
TRAIN_ROWS = 50_000


class OldStackBase(DeclarativeBase):
    """The old stack's ORM models."""


class OldStackPrediction(OldStackBase):
    """The old stack's predictions row: the input features as a JSONB document, one ORM mapping per row."""

    __tablename__ = "bench_old_stack_predictions"
    id = Column(Integer, primary_key=True)
    model_name = Column(String(255))
    model_version = Column(String(32))
    model_alias = Column(String(128))
    model_role = Column(String(32))
    run_group_id = Column(String(64))
    input_features = Column(JSON().with_variant(JSONB, "postgresql"))
    predicted_class = Column(Text)
    probabilities = Column(JSON().with_variant(JSONB, "postgresql"))
    created_at = Column(DateTime(timezone=True))


def generated_chunks(rows: int, seed: int = 0):
    """Labelled rows in chunks, from a fixed linear model with noise (memory stays one chunk)."""
    weights = np.random.default_rng(seed).normal(size=(len(FEATURES), 3))
    rng = np.random.default_rng(seed + 1)
    for start in range(0, rows, CHUNK_ROWS):
        size = min(CHUNK_ROWS, rows - start)
        features = rng.normal(size=(size, len(FEATURES)))
        labels = np.argmax(features @ weights + rng.normal(scale=2.0, size=(size, 3)), axis=1)
        yield pd.DataFrame(features, columns=FEATURES).assign(target=labels.astype(np.int64))


def _identity(dataset: DatasetVersion, role: str) -> BatchIdentity:
    return BatchIdentity(
        f"bench-{dataset.name}-v{dataset.version}",
        role,
        dataset.name,
        dataset.version,
        "bench_model",
        1,
        "Production",
        uuid.uuid4().hex,
        datetime.now(UTC),
    )


def _platform_path(uri: str, dataset: DatasetVersion, model_path: str, queue) -> None:
    engine = engine_for(uri)
    model = joblib.load(model_path)
    started = time.perf_counter()
    written = run_batch(engine, dataset, model, FEATURES, _identity(dataset, "production"), CHUNK_ROWS)
    seconds = time.perf_counter() - started
    queue.put(
        {"rows": written, "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    )


def _in_fresh_process(uri: str, dataset: DatasetVersion, model_path: str) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_platform_path, args=(uri, dataset, model_path, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _classified(model, features: pd.DataFrame, dataset: DatasetVersion) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Classes, labels and probabilities of the bench's classifier (its generated target is a class)."""
    predicted = predict_chunk(model, features, dataset.task_type)
    if predicted.classes is None or predicted.predicted_class is None or predicted.probabilities is None:
        raise TypeError("bench inference needs a classifier")
    return predicted.classes, predicted.predicted_class, predicted.probabilities


def _prediction_frame(model, features: pd.DataFrame, dataset: DatasetVersion) -> pd.DataFrame:
    classes, labels, probabilities = _classified(model, features, dataset)
    who = _identity(dataset, "production")
    return pd.DataFrame(
        {
            "batch_id": who.batch_id,
            "model_role": who.model_role,
            "row_id": features.index.to_numpy(),
            "dataset": who.dataset,
            "dataset_version": who.dataset_version,
            "model_name": who.model_name,
            "model_version": who.model_version,
            "model_alias": who.model_alias,
            "mlflow_run_id": who.mlflow_run_id,
            "predicted_class": labels,
            "predicted_value": None,
            "classes": [classes] * len(labels),
            "probabilities": list(probabilities),
            "created_at": who.created_at,
        }
    )


def _to_sql(engine: Engine, model, features: pd.DataFrame, dataset: DatasetVersion) -> float:
    _copy_table(engine, "bench_to_sql")
    started = time.perf_counter()
    frame = _prediction_frame(model, features, dataset)
    frame["probabilities"] = frame["probabilities"].map(list)
    types = {column.name: column.type for column in predictions.columns}
    frame.to_sql("bench_to_sql", engine, if_exists="append", index=False, dtype=types)
    return time.perf_counter() - started


def _old_stack(engine: Engine, model, features: pd.DataFrame, dataset: DatasetVersion) -> float:
    OldStackBase.metadata.drop_all(engine)
    OldStackBase.metadata.create_all(engine)
    started = time.perf_counter()
    classes, labels, probabilities = _classified(model, features, dataset)
    now = datetime.now(UTC)
    inputs = features.to_dict("records")
    mappings = [
        {
            "model_name": "bench_model",
            "model_version": "1",
            "model_alias": "Production",
            "model_role": "production",
            "run_group_id": "bench",
            "input_features": row,
            "predicted_class": label,
            "probabilities": dict(zip(classes, map(float, row_probabilities))),
            "created_at": now,
        }
        for row, label, row_probabilities in zip(inputs, labels, probabilities)
    ]
    with Session(engine) as session, session.begin():
        session.bulk_insert_mappings(OldStackPrediction, mappings)
    return time.perf_counter() - started


def _ceiling(engine: Engine, model, features: pd.DataFrame, dataset: DatasetVersion) -> float:
    from mlplatform.appdb.predictions import _CopyWriter

    _copy_table(engine, "bench_ceiling")
    started = time.perf_counter()
    predicted: PredictedChunk = predict_chunk(model, features, dataset.task_type)
    raw = engine.raw_connection()
    try:
        with psycopg_connection(raw).cursor() as cursor:
            columns = ", ".join(_CopyWriter._COLUMNS)
            with cursor.copy(f"COPY bench_ceiling ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                writer = _CopyWriter(copy, _identity(dataset, "production"))
                writer.write(predicted)
                writer.close()
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def _copy_table(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(text(f"CREATE TABLE {name} (LIKE predictions INCLUDING ALL)"))


def bench_inference(uri: str, rows: int, only_platform: bool = False) -> dict:
    engine = postgresql_engine(uri, "inference")
    digest = hashlib.sha256(f"bench-{rows}-{uuid.uuid4()}".encode()).hexdigest()
    started = time.perf_counter()
    dataset = store_chunks(
        engine, f"bench_{rows}", "target", "classification", "generated", digest, generated_chunks(rows)
    )
    report = {"rows": rows, "prepare_seconds": round(time.perf_counter() - started, 2)}
    sample = next(generated_chunks(TRAIN_ROWS, seed=0))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(sample[FEATURES], sample["target"])
    with tempfile.TemporaryDirectory() as folder:
        model_path = str(Path(folder) / "model.joblib")
        joblib.dump(model, model_path)
        platform = _in_fresh_process(uri, dataset, model_path)
    report |= {
        "platform_seconds": round(platform["seconds"], 3),
        "platform_rows_per_s": round(platform["rows"] / platform["seconds"]),
        "platform_peak_rss_mb": round(platform["peak_rss_mb"], 1),
    }
    if not only_platform:
        features = pd.concat(list(iter_feature_chunks(engine, dataset, FEATURES, CHUNK_ROWS)))
        for name, path in (("ceiling", _ceiling), ("to_sql", _to_sql), ("old_stack", _old_stack)):
            seconds = path(engine, model, features, dataset)
            report[f"{name}_rows_per_s"] = round(rows / seconds)
        report |= {
            "platform_vs_old_stack": round(report["platform_rows_per_s"] / report["old_stack_rows_per_s"], 2),
            "platform_vs_to_sql": round(report["platform_rows_per_s"] / report["to_sql_rows_per_s"], 2),
            "platform_vs_ceiling": round(report["platform_rows_per_s"] / report["ceiling_rows_per_s"], 2),
        }
    _cleanup(engine, dataset)
    return report


def _cleanup(engine: Engine, dataset: DatasetVersion) -> None:
    with engine.begin() as conn:
        for table in ("bench_to_sql", "bench_ceiling", OldStackPrediction.__tablename__, dataset.table_name):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
        conn.execute(
            text("DELETE FROM predictions WHERE batch_id = :b"), {"b": f"bench-{dataset.name}-v{dataset.version}"}
        )
        conn.execute(
            text("DELETE FROM dataset_versions WHERE name = :n AND version = :v"),
            {"n": dataset.name, "v": dataset.version},
        )
