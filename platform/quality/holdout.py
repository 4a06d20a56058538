"""A registered version with what it was trained on, and models scored on rows none of them has seen.

The promotion gate and the monitoring report both judge models this way: ``evaluate_held_out`` is the one place.
Memory does not grow with the table: a dataset version is read in chunks, once for each row's content key and label
(16 bytes a row at most: the split needs them), then once more for the rows it keeps, a deterministic sample of at
most ``sample_rows`` held-out rows, training rows and rows of the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from sqlalchemy import Engine

from mlplatform.appdb.datasets import DatasetVersion, get_version, iter_feature_chunks
from mlplatform.model_registry import ModelRegistry
from mlplatform.training.scoring import PRIMARY_METRIC, score_model
from mlplatform.training.split import SplitSpec, row_keys, split_positions

SAMPLE_ROWS = 100_000  # at most this many rows are scored, and compared for drift, per report or gate decision
CHUNK_ROWS = 50_000
_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads the row keys, so the sample is not the split's own order


@dataclass
class TrainedModel:
    version: ModelVersion
    model: Any  # the scikit-learn pipeline
    dataset: DatasetVersion  # the dataset version it was trained on

    @property
    def number(self) -> int:
        return int(self.version.version)


@dataclass
class HeldOutEvaluation:
    """Models scored on rows of ``dataset`` that none of them was trained on (a sample of at most ``sample_rows``)."""

    dataset: DatasetVersion
    metric: str
    scores: list[float | None]  # one per model, in the order given; None: the model cannot score this dataset
    held_out_rows: int  # the rows scored
    reference: pd.DataFrame = field(repr=False)  # a sample of the first model's training rows
    frame: pd.DataFrame = field(repr=False)  # a sample of the rows of the dataset version


@dataclass
class _RowFacts:
    """Each row's content key and label code (codes sort like the labels), in ``row_id`` order."""

    keys: np.ndarray
    codes: np.ndarray


def trained_model(engine: Engine, registry: ModelRegistry, version: ModelVersion) -> TrainedModel:
    """Load a registered version with the dataset version it records in its tags."""
    dataset = get_version(engine, version.tags["dataset"], int(version.tags["dataset_version"]))
    return TrainedModel(version, registry.load_model(version), dataset)


def evaluate_held_out(
    engine: Engine, dataset: DatasetVersion, models: list[TrainedModel], sample_rows: int = SAMPLE_ROWS
) -> HeldOutEvaluation:
    """Recompute every model's training rows, score each on a sample of the rest, with the primary metric recorded
    on the first model (the default for versions that record none)."""
    facts = {(dataset.name, dataset.version): _row_facts(engine, dataset)}
    current = facts[(dataset.name, dataset.version)]
    seen = np.zeros(len(current.keys), dtype=bool)
    reference_dataset, reference_facts, reference_positions = dataset, current, np.array([], dtype=np.int64)
    for index, trained in enumerate(models):
        own = trained.dataset
        if (own.name, own.version) not in facts:
            facts[(own.name, own.version)] = _row_facts(engine, own)
        own_facts = facts[(own.name, own.version)]
        spec = SplitSpec.from_tags(trained.version.tags)
        train, _ = split_positions(own_facts.keys, own_facts.codes, own.task_type, spec)
        if index == 0:
            reference_dataset, reference_facts = own, own_facts
            reference_positions = _sample(train, own_facts.keys, sample_rows)
        trained_keys = own_facts.keys[train]
        del train
        trained_keys.sort()
        _mark_contained(trained_keys, current.keys, seen)  # by content, as the split compares rows
        del trained_keys
    held = _sample(np.flatnonzero(~seen), current.keys, sample_rows)
    if len(held) == 0:
        raise ValueError(f"dataset {dataset.name} v{dataset.version} has no rows that the models were not trained on")
    wanted = {"held": held, "frame": _sample(None, current.keys, sample_rows)}
    same = reference_facts is current
    if same:
        wanted["reference"] = reference_positions
    rows = _rows_at(engine, dataset, wanted)
    reference = rows["reference"] if same else _rows_at(engine, reference_dataset, {"r": reference_positions})["r"]
    metric = models[0].version.tags.get("metric") or PRIMARY_METRIC[dataset.task_type]
    scores = [_score_on(model, rows["held"], dataset, metric) for model in models]
    return HeldOutEvaluation(dataset, metric, scores, len(rows["held"]), reference, rows["frame"])


def _row_facts(engine: Engine, dataset: DatasetVersion) -> _RowFacts:
    keys = np.empty(dataset.rows, dtype=np.uint64)
    codes = np.zeros(dataset.rows, dtype=np.int32)
    labels = pd.Index([])
    columns = [c["name"] for c in dataset.columns]
    for chunk in iter_feature_chunks(engine, dataset, columns, CHUNK_ROWS):
        at = chunk.index.to_numpy()  # row ids are dense: 0 .. rows - 1
        keys[at] = row_keys(chunk).to_numpy()
        if dataset.task_type == "classification":
            found = pd.Index(chunk[dataset.target_column].unique())
            labels = found if labels.empty else labels.append(found).unique()  # first seen first: codes stay put
            codes[at] = labels.get_indexer(chunk[dataset.target_column])
    if not labels.empty:
        rank = np.argsort(np.argsort(labels.to_numpy(), kind="stable"), kind="stable").astype(np.int32)
        codes = rank[codes]
    return _RowFacts(keys, codes)


def _mark_contained(sorted_keys: np.ndarray, keys: np.ndarray, marks: np.ndarray) -> None:
    """Set ``marks`` where ``keys`` are among ``sorted_keys`` (sorted), a slice at a time (no sort of both)."""
    if len(sorted_keys) == 0:
        return
    for start in range(0, len(keys), CHUNK_ROWS):
        part = keys[start : start + CHUNK_ROWS]
        found = np.searchsorted(sorted_keys, part)
        np.minimum(found, len(sorted_keys) - 1, out=found)
        marks[start : start + CHUNK_ROWS] |= sorted_keys[found] == part


def _sample(positions: np.ndarray | None, keys: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``positions`` (None: every row), the same ones for the same rows every time (those with
    the smallest mixed keys)."""
    count = len(keys) if positions is None else len(positions)
    if count <= limit:
        return np.arange(len(keys)) if positions is None else np.sort(positions)
    mixed = keys * _MIX if positions is None else keys[positions] * _MIX
    chosen = np.argpartition(mixed, limit)[:limit]
    return np.sort(chosen if positions is None else positions[chosen])


def _rows_at(engine: Engine, dataset: DatasetVersion, wanted: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    """The rows at the given positions (``row_id``s, sorted), one pass over the version for all of them."""
    columns = [c["name"] for c in dataset.columns]
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in wanted}
    for chunk in iter_feature_chunks(engine, dataset, columns, CHUNK_ROWS):
        ids = chunk.index.to_numpy()
        for name, positions in wanted.items():
            inside = positions[(positions >= ids[0]) & (positions <= ids[-1])]
            if len(inside):
                parts[name].append(chunk.loc[chunk.index.isin(inside)])
    return {name: pd.concat(frames) if frames else pd.DataFrame(columns=columns) for name, frames in parts.items()}


def _score_on(trained: TrainedModel, rows: pd.DataFrame, dataset: DatasetVersion, metric: str) -> float | None:
    """The model's ``metric`` on ``rows``; None when the rows lack a feature the model needs."""
    features = trained.dataset.features
    if not set(features) <= set(rows.columns) or dataset.target_column != trained.dataset.target_column:
        return None
    return score_model(dataset.task_type, trained.model, rows[features], rows[dataset.target_column])[metric]
