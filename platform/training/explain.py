"""What the registered model does per class and which raw columns it relies on (permutation importance)."""

from __future__ import annotations

import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import precision_recall_fscore_support

IMPORTANCE_ROWS = 2_000  # permutation importance on at most this many validation rows
IMPORTANCE_REPEATS = 5
# The scikit-learn scorer of each primary metric (higher is better for every scorer).
SCORERS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "f1_macro": "f1_macro",
    "roc_auc": "roc_auc_ovr",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
}


def per_class_scores(y_true, y_pred) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class."""
    classes = sorted(set(pd.Series(y_true).astype(str)) | set(pd.Series(y_pred).astype(str)))
    truth, predicted = pd.Series(y_true).astype(str), pd.Series(y_pred).astype(str)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0)
    return pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})


def feature_importance(model, features: pd.DataFrame, target: pd.Series, metric: str, seed: int) -> pd.DataFrame:
    """Permutation importance of every raw column on the metric: how much the score drops when it is shuffled."""
    rows = features.sample(min(len(features), IMPORTANCE_ROWS), random_state=seed)
    result = permutation_importance(
        model, rows, target.loc[rows.index], scoring=SCORERS[metric], n_repeats=IMPORTANCE_REPEATS, random_state=seed
    )
    frame = pd.DataFrame(
        {"feature": list(features.columns), "importance": result.importances_mean, "std": result.importances_std}
    )
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
