"""Per-feature drift between a reference (training) frame and a current frame: KS test and PSI."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

KS_P_VALUE = 0.01  # drifted when the KS test rejects "same distribution" at this level ...
PSI_LIMIT = 0.2  # ... and the population stability index says the shift is material
PSI_BINS = 10


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    rows = []
    for feature in features:
        ref, cur = reference[feature].dropna().to_numpy(), current[feature].dropna().to_numpy()
        ks = ks_2samp(ref, cur)
        psi = population_stability_index(ref, cur)
        rows.append(
            {
                "feature": feature,
                "ks_statistic": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "psi": psi,
                "reference_mean": float(ref.mean()),
                "current_mean": float(cur.mean()),
                "drifted": bool(ks.pvalue < KS_P_VALUE and psi >= PSI_LIMIT),
            }
        )
    return pd.DataFrame(rows)


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.all(current == reference[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-6, None), np.clip(actual, 1e-6, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
