"""Per-feature drift (KS test and PSI) between a reference and a current frame."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlplatform.quality.drift import PSI_LIMIT, drift_records, feature_drift, population_stability_index


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(10.0, 2.0, 1000), "b": rng.normal(0.0, 1.0, 1000)})


def test_identical_samples_show_no_drift(reference):
    report = feature_drift(reference, reference.copy(), ["a", "b"])
    assert report["feature"].tolist() == ["a", "b"]
    assert not report["drifted"].any()
    assert report["psi"].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert report["ks_statistic"].tolist() == pytest.approx([0.0, 0.0])
    assert report["ks_pvalue"].tolist() == pytest.approx([1.0, 1.0])
    assert report["reference_mean"].tolist() == pytest.approx(report["current_mean"].tolist())


@pytest.mark.parametrize("shift_sd", [3, 5])
def test_shifted_feature_drifts_and_unshifted_does_not(reference, shift_sd):
    rng = np.random.default_rng(1)
    current = pd.DataFrame(
        {
            "a": rng.normal(10.0 + shift_sd * 2.0, 2.0, 500),  # shifted by shift_sd standard deviations
            "b": rng.normal(0.0, 1.0, 500),  # a fresh sample of the same distribution
        }
    )
    report = feature_drift(reference, current, ["a", "b"]).set_index("feature")
    assert bool(report.loc["a", "drifted"]) is True
    assert report.loc["a", "psi"] >= PSI_LIMIT
    assert report.loc["a", "ks_pvalue"] < 0.01
    assert report.loc["a", "current_mean"] == pytest.approx(10.0 + shift_sd * 2.0, abs=0.5)
    assert bool(report.loc["b", "drifted"]) is False
    assert report.loc["b", "psi"] < PSI_LIMIT
    assert report.loc["b", "ks_pvalue"] > 0.01


def test_missing_values_are_ignored(reference):
    current = reference.copy()
    current.loc[::10, "a"] = np.nan
    report = feature_drift(reference, current, ["a"])
    assert not report["drifted"].any()
    assert math.isfinite(report.loc[0, "psi"]) and report.loc[0, "psi"] < 0.01


def test_only_requested_features_are_reported(reference):
    report = feature_drift(reference, reference, ["b"])
    assert report["feature"].tolist() == ["b"]


def test_psi_of_a_constant_reference_is_finite_and_grows_with_the_share_of_other_values():
    reference = np.full(100, 3.0)
    same = population_stability_index(reference, np.full(50, 3.0))
    a_third = population_stability_index(reference, np.array([3.0, 3.0, 4.0]))
    all_other = population_stability_index(reference, np.full(20, 2.0))
    assert same == pytest.approx(0.0, abs=1e-4)
    assert PSI_LIMIT < a_third < all_other < math.inf


def test_drift_records_are_valid_json_for_categories_constants_and_empty_sides():
    reference = pd.DataFrame({"a": [1.0] * 40, "gap": [np.nan] * 40, "c": ["x", "y"] * 20})
    current = pd.DataFrame({"a": [2.0] * 40, "gap": [1.0] * 40, "c": ["x", "new"] * 20})
    drift = feature_drift(reference, current, ["a", "gap", "c"], {"c": "categorical"})
    records = drift_records(drift)
    assert json.loads(json.dumps(records, allow_nan=False)) == records
    by_feature = {r["feature"]: r for r in records}
    assert by_feature["c"]["ks_statistic"] is None and by_feature["c"]["new_categories"] == 20
    assert by_feature["gap"]["ks_statistic"] is None and by_feature["gap"]["drifted"] is False
    assert by_feature["a"]["drifted"] is True


def test_psi_grows_with_the_shift():
    rng = np.random.default_rng(2)
    ref = rng.normal(0.0, 1.0, 2000)
    small = population_stability_index(ref, rng.normal(0.5, 1.0, 2000))
    large = population_stability_index(ref, rng.normal(2.0, 1.0, 2000))
    assert 0.0 < small < large
    assert large >= PSI_LIMIT
