"""The content-ordered, seeded train/validation split and the held-out rows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from mlplatform.datasets.sources import read_source
from mlplatform.training.split import SplitSpec, held_out, split, split_positions


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return read_source("iris").frame


def rows(frame: pd.DataFrame) -> Counter:
    """The rows of a frame by content, as a multiset (iris holds a duplicated row)."""
    return Counter(map(tuple, frame.to_numpy().tolist()))


@pytest.mark.parametrize("seed", [0, 7])
def test_split_is_deterministic_and_independent_of_row_order(iris, seed):
    spec = SplitSpec(seed=seed)
    train, validation = split(iris, "target", "classification", spec)
    again_train, again_validation = split(iris, "target", "classification", spec)
    assert list(train.index) == list(again_train.index) and list(validation.index) == list(again_validation.index)

    shuffled = iris.sample(frac=1, random_state=123).reset_index(drop=True)
    assert shuffled.to_numpy().tolist() != iris.to_numpy().tolist()
    s_train, s_validation = split(shuffled, "target", "classification", spec)
    assert rows(s_train) == rows(train)
    assert rows(s_validation) == rows(validation)
    assert rows(train) + rows(validation) == rows(iris)


def test_different_seeds_give_different_splits(iris):
    _, first = split(iris, "target", "classification", SplitSpec(seed=0))
    _, second = split(iris, "target", "classification", SplitSpec(seed=1))
    assert rows(first) != rows(second)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.33, 0.5])
def test_validation_share_is_about_the_fraction(iris, fraction):
    train, validation = split(iris, "target", "classification", SplitSpec(validation_fraction=fraction))
    assert len(train) + len(validation) == len(iris)
    assert abs(len(validation) / len(iris) - fraction) <= 0.01


@pytest.mark.parametrize("seed", range(5))
def test_classification_split_is_stratified(seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=100), "label": [0] * 80 + [1] * 20})
    _, validation = split(frame, "label", "classification", SplitSpec(seed=seed, validation_fraction=0.2))
    assert validation["label"].value_counts().to_dict() == {0: 16, 1: 4}


def test_regression_split_covers_every_row_once():
    frame = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0) * 1.5})
    train, validation = split(frame, "y", "regression", SplitSpec(validation_fraction=0.2))
    assert len(validation) == 10
    assert sorted(train.index.tolist() + validation.index.tolist()) == list(range(50))


@pytest.mark.parametrize("fraction", [0.0, 0.04, 0.0499, 0.51, 1.0])
def test_split_spec_rejects_fractions_outside_range(fraction):
    with pytest.raises(ValueError, match="validation_fraction must be between 0.05 and 0.5"):
        SplitSpec(validation_fraction=fraction)


@pytest.mark.parametrize("fraction", [0.05, 0.5])
def test_split_spec_accepts_range_bounds(fraction):
    assert SplitSpec(validation_fraction=fraction).validation_fraction == fraction


@pytest.mark.parametrize("spec", [SplitSpec(), SplitSpec(seed=42, validation_fraction=0.35), SplitSpec(3, 0.05)])
def test_tags_round_trip(spec):
    tags = spec.as_tags()
    assert set(tags) == {"split_seed", "validation_fraction"}
    assert all(isinstance(v, str) for v in tags.values())
    assert SplitSpec.from_tags(tags) == spec


def test_held_out_excludes_training_rows_by_content():
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2, "y": [0, 1] * 5})
    first = frame.iloc[[0, 2, 4]].reset_index(drop=True)  # same rows, different index
    second = frame.iloc[[4, 7]].set_axis([100, 101])
    held = held_out(frame, first, second)
    assert held.index.tolist() == [1, 3, 5, 6, 8, 9]
    pd.testing.assert_frame_equal(held, frame.loc[[1, 3, 5, 6, 8, 9]])


def test_held_out_without_training_sets_keeps_everything():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    pd.testing.assert_frame_equal(held_out(frame), frame)


def test_held_out_after_two_splits(iris):
    train_a, _ = split(iris, "target", "classification", SplitSpec(seed=0))
    train_b, _ = split(iris, "target", "classification", SplitSpec(seed=1))
    held = held_out(iris, train_a.reset_index(drop=True), train_b.reset_index(drop=True))
    seen = set(rows(train_a)) | set(rows(train_b))
    assert len(held) > 0
    assert not set(rows(held)) & seen
    expected = [i for i, row in zip(iris.index, map(tuple, iris.to_numpy().tolist())) if row not in seen]
    assert held.index.tolist() == expected


@pytest.mark.parametrize(
    "rows, classes, seed, fraction",
    [(150, 3, 0, 0.2), (1_001, 2, 7, 0.25), (5_000, 11, 3, 0.05), (20_000, 3, 0, 0.5), (40, 20, 1, 0.5)],
)
def test_the_positions_split_is_scikit_learns_stratified_split(rows, classes, seed, fraction):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**63, rows, dtype=np.uint64)
    labels = np.arange(rows) % classes if rows < classes * 3 else rng.integers(0, classes, rows)  # 2+ rows a class
    spec = SplitSpec(seed=seed, validation_fraction=fraction)
    train, validation = split_positions(keys, labels, "classification", spec)
    order = np.argsort(keys, kind="stable")
    expected_train, expected_validation = train_test_split(
        order, test_size=fraction, random_state=seed, stratify=labels[order]
    )
    assert train.tolist() == expected_train.tolist() and validation.tolist() == expected_validation.tolist()
