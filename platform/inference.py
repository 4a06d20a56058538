"""Batch inference: stream a dataset version through a model into the ``predictions`` table, chunk by chunk."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from queue import Empty, Queue
from typing import TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from mlplatform.appdb.datasets import DatasetVersion, iter_feature_chunks
from mlplatform.appdb.predictions import BatchIdentity, PredictedChunk, open_batch
from mlplatform.quality.holdout import TrainedModel
from mlplatform.training.categories import known_categories

CHUNK_ROWS = 100_000
T = TypeVar("T")


def batch_id(dataset: DatasetVersion, production: TrainedModel) -> str:
    """Deterministic: the same dataset version scored by the same production version is the same batch."""
    return f"{dataset.name}-v{dataset.version}-{production.version.name}-v{production.number}"


def identity(batch: str, role: str, dataset: DatasetVersion, model: TrainedModel, alias: str) -> BatchIdentity:
    return BatchIdentity(
        batch_id=batch,
        model_role=role,
        dataset=dataset.name,
        dataset_version=dataset.version,
        model_name=model.version.name,
        model_version=model.number,
        model_alias=alias,
        mlflow_run_id=model.version.run_id or "",
        created_at=datetime.now(UTC),
    )


def predict_chunk(model, features: pd.DataFrame, task_type: str) -> PredictedChunk:
    row_ids = features.index.to_numpy()
    predicted = model.predict(features)
    if task_type != "classification":
        return PredictedChunk(row_ids, predicted_value=np.asarray(predicted, dtype="float64"))
    return PredictedChunk(
        row_ids,
        predicted_class=np.asarray(predicted).astype(str),
        classes=[str(c) for c in model.classes_],
        probabilities=np.asarray(model.predict_proba(features), dtype="float64"),
    )


def unknown_categories(frame: pd.DataFrame, known: dict[str, set[str]]) -> Counter:
    """Per categorical column, how many values of ``frame`` are not among the ``known`` training categories."""
    counts: Counter = Counter()
    for column, categories in known.items():
        values = frame[column].dropna().astype(str)
        unseen = int((~values.isin(categories)).sum())
        if unseen:
            counts[column] = unseen
    return counts


def prefetched(chunks: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Read the next chunk in a thread while this one is predicted and written (at most ``depth`` chunks ahead)."""
    queue: Queue = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                queue.put(chunk)
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)

    reader = threading.Thread(target=produce, name="batch-reader", daemon=True)
    reader.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            try:
                queue.get_nowait()
            except Empty:
                reader.join(timeout=0.05)


def run_batch(
    engine: Engine,
    dataset: DatasetVersion,
    model,
    features: list[str],
    who: BatchIdentity,
    chunk_rows: int = CHUNK_ROWS,
    unknown: Counter | None = None,
) -> int:
    """Predict every row of ``dataset`` and replace the batch (``who``) in one transaction; returns rows written.

    ``unknown`` (if given) counts, per categorical feature, the values the model never saw in training: they are
    predicted like a gap, never a failure.
    """
    written = 0
    known = known_categories(model)
    with open_batch(engine, who) as writer:
        for chunk in prefetched(iter_feature_chunks(engine, dataset, features, chunk_rows)):
            if unknown is not None:
                unknown.update(unknown_categories(chunk, known))
            predicted = predict_chunk(model, chunk, dataset.task_type)
            writer.write(predicted)
            written += len(predicted)
    return written
