"""Real-world tables end to end: string categories, booleans, gaps and an ID column, from CSV to served answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml
from tables import customer_table, write_csv

from mlplatform.cli.demo import run_demo
from mlplatform.contract import SCHEMA_PATH
from mlplatform.definitions import build_definitions
from mlplatform.serving.reconcile import stop
from mlplatform.serving.scoring_client import invoke
from mlplatform.settings import Settings


def test_table_with_categories_gaps_and_an_id_is_trained_predicted_and_served_from_raw_columns(
    tmp_path, clean_environment
):
    csv = write_csv(customer_table(), tmp_path / "customers.csv")
    home = tmp_path / "home"
    summary = run_demo(str(home), str(csv), "churned", keep_serving=True)
    defs = build_definitions(Settings.load(home), environ={})
    registry, backend = defs.resources["mlflow"].registry(), defs.resources["serving"].open()
    try:
        assert summary["dataset"]["rows"] == 400
        assert summary["predictions"]["rows_written"] == 400
        # The demo's check: the served answers for the contract's raw sample rows equal the batch predictions.
        assert summary["serving"]["invocation_ok"] is True
        version = registry.require_alias("mlplatform_customers", "Production")
        mlmodel = yaml.safe_load(registry.load_text(version.run_id, "model/MLmodel"))
        signature = {i["name"]: i["type"] for i in json.loads(mlmodel["signature"]["inputs"])}
        schema = json.loads(registry.load_text(version.run_id, SCHEMA_PATH))
        features = {f["name"]: f for f in schema["features"]}
        assert set(features) == {"plan", "region", "autopay", "tenure_months", "monthly_spend"}
        assert schema["dropped_columns"] == {"customer_id": "unique per row (an ID column)"}
        assert features["plan"]["kind"] == "categorical" and features["plan"]["dtype"] == "str"
        assert features["plan"]["categories"] == ["basic", "plus", "premium"]
        assert features["autopay"]["categories"] == ["false", "true"]
        assert 0.05 < features["tenure_months"]["missing_share"] < 0.15
        assert signature == {
            "plan": "string",
            "region": "string",
            "autopay": "string",
            "tenure_months": "double",
            "monthly_spend": "double",
        }

        # An unknown category and gaps at serving: answered, not a crash.
        unseen = pd.DataFrame(
            {
                "plan": ["platinum", None],
                "region": ["atlantis", "north"],
                "autopay": ["true", None],
                "tenure_months": [12.0, np.nan],
                "monthly_spend": [40.0, 55.5],
            }
        )
        answers = invoke(summary["serving"]["url"], unseen)
        assert len(answers) == 2 and set(answers) <= {"yes", "no"}
    finally:
        stop(backend, "mlplatform_customers", "Production")
