"""The deterministic train/validation split, and the held-out rows two models have both never seen.

Rows are ordered by a hash of their content before a seeded stratified split, so the split depends only on the
data and the seed, never on load order. Row keys (the same hash) let any later step recompute which rows a model
was trained on from its recorded dataset version, seed and fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SplitSpec:
    seed: int = 0
    validation_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0.05 <= self.validation_fraction <= 0.5:
            raise ValueError(f"validation_fraction must be between 0.05 and 0.5, got {self.validation_fraction}")

    def as_tags(self) -> dict[str, str]:
        return {"split_seed": str(self.seed), "validation_fraction": str(self.validation_fraction)}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> SplitSpec:
        return cls(seed=int(tags["split_seed"]), validation_fraction=float(tags["validation_fraction"]))


def row_keys(frame: pd.DataFrame) -> pd.Series:
    """A content hash per row (features and target), independent of the index."""
    return pd.Series(pd.util.hash_pandas_object(frame, index=False).to_numpy(), index=frame.index)


def split(frame: pd.DataFrame, target: str, task_type: str, spec: SplitSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, validation = split_positions(row_keys(frame).to_numpy(), frame[target].to_numpy(), task_type, spec)
    return frame.iloc[train], frame.iloc[validation]


def split_positions(
    keys: np.ndarray, labels: np.ndarray, task_type: str, spec: SplitSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and validation rows, from each row's key and label alone (labels may be codes
    that sort like the labels): what ``split`` does, without the rows' other columns in memory."""
    order = np.argsort(keys, kind="stable")
    if task_type != "classification" or not _stratifiable(pd.Series(labels[order]), spec):
        # Imported here: scikit-learn costs about 1 s, which every process loading the code location would pay.
        from sklearn.model_selection import train_test_split  # noqa: PLC0415

        train, validation = train_test_split(order, test_size=spec.validation_fraction, random_state=spec.seed)
        return train, validation
    train, validation = _stratified_positions(labels[order], spec)
    return order[train], order[validation]


def _stratified_positions(labels: np.ndarray, spec: SplitSpec) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``train_test_split(..., stratify=labels)``, draw for draw, with numpy arrays where it
    collects the positions in Python lists (about 40 bytes a row: what made monitoring's memory grow with the
    table). tests/training/test_split.py checks that both give the same positions."""
    from sklearn.utils import check_random_state  # noqa: PLC0415 - as in split_positions
    from sklearn.utils.extmath import _approximate_mode  # noqa: PLC0415

    rows = len(labels)
    n_test = math.ceil(spec.validation_fraction * rows)
    n_train = rows - n_test
    codes, counts = _class_codes(labels)
    del labels  # the caller passes its own copy: with ``codes`` gone, freed
    by_class = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    del codes
    rng = check_random_state(spec.seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train, test = [], []
    for i, members in enumerate(by_class):
        shuffled = members.take(rng.permutation(counts[i]), mode="clip")
        train.append(shuffled[: n_i[i]])
        test.append(shuffled[n_i[i] : n_i[i] + t_i[i]])
    del by_class, members  # views of one sorted array: freed before the concatenation
    train_positions, test_positions = np.concatenate(train), np.concatenate(test)
    del train, test
    rng.shuffle(train_positions)  # what ``rng.permutation`` does to its copy, in place
    rng.shuffle(test_positions)
    return train_positions, test_positions


def _class_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class as its rank among the sorted classes, and the rows per class (``np.unique``'s inverse and
    counts; codes that already are ranks 0..k-1, as monitoring passes them, are taken as they are)."""
    if np.issubdtype(labels.dtype, np.integer) and len(labels) and labels.min() == 0:
        counts = np.bincount(labels)
        if counts.all():
            return labels, counts
    _classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return codes, counts


def held_out(frame: pd.DataFrame, *training_sets: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` that appear in none of ``training_sets`` (compared by content)."""
    seen = np.concatenate([row_keys(t).to_numpy() for t in training_sets]) if training_sets else np.array([])
    return frame[~row_keys(frame).isin(seen)]


def _stratifiable(labels: pd.Series, spec: SplitSpec) -> bool:
    counts = labels.value_counts()
    return bool(counts.min() >= 2 and len(counts) <= len(labels) * spec.validation_fraction)
