"""Per-feature drift between a reference (training) frame and a current frame.

Numeric features: KS test and PSI over reference quantile bins. Categorical features: chi-square test and PSI over
the reference categories plus one bucket for categories unseen in training (counted as ``new_categories``).
A feature has drifted when the test rejects "same distribution" and PSI says the shift is material.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KS_P_VALUE = 0.01  # drifted when the test rejects "same distribution" at this level ...
PSI_LIMIT = 0.2  # ... and the population stability index says the shift is material
PSI_BINS = 10
NEW = "(new)"  # the bucket of categories unseen in the reference


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], kinds: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per feature; ``kinds`` maps a feature to "numeric" (the default) or "categorical"."""
    kinds = kinds or {}
    rows = []
    for feature in features:
        ref, cur = reference[feature].dropna(), current[feature].dropna()
        if kinds.get(feature) == "categorical":
            rows.append({"feature": feature, "kind": "categorical", **_categorical(ref.astype(str), cur.astype(str))})
        else:
            rows.append({"feature": feature, "kind": "numeric", **_numeric(ref.to_numpy(float), cur.to_numpy(float))})
    return pd.DataFrame(rows)


def _numeric(ref: np.ndarray, cur: np.ndarray) -> dict:
    tested = len(ref) > 0 and len(cur) > 0  # a side without values (all gaps) has no distribution to compare
    from scipy.stats import ks_2samp  # noqa: PLC0415 - scipy.stats: 0.5 s off every import of the code location

    ks = ks_2samp(ref, cur) if tested else None
    statistic, pvalue = (ks.statistic, ks.pvalue) if ks is not None else (np.nan, 1.0)
    psi = population_stability_index(ref, cur)
    return {
        "test": "ks",
        "ks_statistic": float(statistic),
        "ks_pvalue": float(pvalue),
        "psi": psi,
        "reference_mean": float(ref.mean()) if len(ref) else np.nan,
        "current_mean": float(cur.mean()) if len(cur) else np.nan,
        "new_categories": 0,
        "drifted": bool(pvalue < KS_P_VALUE and psi >= PSI_LIMIT),
    }


def _categorical(ref: pd.Series, cur: pd.Series) -> dict:
    categories = sorted(ref.unique())
    new = int((~cur.isin(categories)).sum())
    expected = ref.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    actual = cur.where(cur.isin(categories), NEW).value_counts().reindex([*categories, NEW], fill_value=0)
    counts = np.vstack([np.append(expected, 0.0), actual.to_numpy(float)])
    counts = counts[:, counts.sum(axis=0) > 0]
    from scipy.stats import chi2_contingency  # noqa: PLC0415 - as in _numeric

    pvalue = float(chi2_contingency(counts).pvalue) if counts.shape[1] > 1 else 1.0
    psi = _psi(np.append(expected, 0.0) / max(len(ref), 1), actual.to_numpy(float) / max(len(cur), 1))
    return {
        "test": "chi2",
        "ks_statistic": float("nan"),
        "ks_pvalue": pvalue,
        "psi": psi,
        "reference_mean": float("nan"),
        "current_mean": float("nan"),
        "new_categories": new,
        "drifted": bool(pvalue < KS_P_VALUE and psi >= PSI_LIMIT),
    }


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: one bucket for its value, one for any other (finite, unlike inf)
        same = float(np.mean(current == reference[0]))
        return _psi(np.array([1.0, 0.0]), np.array([same, 1.0 - same]))
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    return _psi(expected, actual)


def drift_records(drift: pd.DataFrame) -> list[dict]:
    """The drift table as JSON-safe rows: a statistic that does not apply (NaN) or is not finite is null."""
    records = drift.astype(object).to_dict("records")
    return [{k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in r.items()} for r in records]


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected, actual = np.clip(expected, 1e-6, None), np.clip(actual, 1e-6, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
