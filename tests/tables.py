"""Generated real-world-like tables for the tests: string categories, booleans, gaps, an ID column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def customer_table(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A churn-like table: ``churned`` (yes/no) depends on a category, a boolean and a number with gaps."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "premium"], rows, p=[0.5, 0.3, 0.2]).astype(object)
    region = rng.choice(["north", "south", "east", "west", None], rows).astype(object)
    autopay = rng.choice(["True", "False"], rows).astype(object)
    tenure = rng.gamma(2.0, 12.0, rows).round(1)
    spend = rng.normal(50, 15, rows).round(2)
    score = (plan == "basic") * 1.5 + (autopay == "False") * 1.0 - tenure / 24 + rng.normal(0, 0.6, rows)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{100000 + i}" for i in range(rows)],
            "plan": plan,
            "region": region,
            "autopay": autopay,
            "tenure_months": tenure,
            "monthly_spend": spend,
            "churned": np.where(score > 0.3, "yes", "no"),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "tenure_months"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "plan"] = None
    return frame


def write_csv(frame: pd.DataFrame, path: Path, **options) -> Path:
    frame.to_csv(path, index=False, **options)
    return path
