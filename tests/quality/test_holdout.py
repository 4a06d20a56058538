"""Held-out scoring and the monitoring report read a bounded sample: at most ``sample_rows`` rows scored and compared,
the same rows every time, never a training row; categorical drift counts new categories and the stored report is
valid JSON."""

from __future__ import annotations

import json

import pytest
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from tables import customer_table, write_csv

from mlplatform.appdb.datasets import read_rows, store_dataset
from mlplatform.appdb.engine import engine_for
from mlplatform.datasets.sources import SourceRequest, read_request
from mlplatform.monitoring import build_report, report_row
from mlplatform.quality.holdout import TrainedModel, evaluate_held_out
from mlplatform.training.candidates import candidate_pipelines
from mlplatform.training.scoring import score_model
from mlplatform.training.split import SplitSpec, split

ROWS = 3_000


def _store(engine, tmp_path, frame, name="customers"):
    path = write_csv(frame, tmp_path / f"{name}_{len(frame)}_{frame.shape[1]}.csv")
    return store_dataset(engine, read_request(SourceRequest(str(path), "churned", "customers")))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("holdout")
    engine = engine_for(f"sqlite:///{tmp_path / 'app.db'}")
    dataset = _store(engine, tmp_path, customer_table(ROWS))
    train, validation = split(read_rows(engine, dataset), dataset.target_column, dataset.task_type, SplitSpec())
    numeric = [f for f, k in dataset.kinds.items() if k == "numeric"]
    categorical = [f for f, k in dataset.kinds.items() if k == "categorical"]
    model = candidate_pipelines("classification", 0, numeric, categorical, len(train))["hist_gradient_boosting"]
    model.fit(train[dataset.features], train[dataset.target_column])
    tags = {**SplitSpec().as_tags(), "metric": "accuracy", "metric_value": "0.7"}
    version = ModelVersion("mlplatform_customers", "1", 0, tags=[ModelVersionTag(k, v) for k, v in tags.items()])
    yield engine, TrainedModel(version, model, dataset), train, validation
    engine.dispose()


def test_below_the_cap_every_held_out_row_is_scored(trained):
    engine, model, train, validation = trained
    evaluation = evaluate_held_out(engine, model.dataset, [model], sample_rows=ROWS)
    assert evaluation.held_out_rows == len(validation)
    features, target = model.dataset.features, model.dataset.target_column
    expected = score_model("classification", model.model, validation[features], validation[target])["accuracy"]
    assert evaluation.scores == [pytest.approx(expected)]
    assert set(evaluation.reference.index) == set(train.index) and len(evaluation.frame) == ROWS


def test_the_sample_cap_is_respected_and_the_sample_is_deterministic(trained):
    engine, model, train, validation = trained
    first = evaluate_held_out(engine, model.dataset, [model], sample_rows=100)
    again = evaluate_held_out(engine, model.dataset, [model], sample_rows=100)
    assert first.held_out_rows == 100 and len(first.reference) == 100 and len(first.frame) == 100
    assert set(first.reference.index) <= set(train.index)
    assert list(first.frame.index) == list(again.frame.index) and first.scores == again.scores
    held = first.frame.index.intersection(validation.index)
    assert len(held) > 0  # the sample of all rows holds validation rows too, and training ones
    assert 0.0 <= first.scores[0] <= 1.0


def test_monitoring_report_counts_new_categories_and_stores_valid_json(trained, tmp_path_factory):
    engine, model, _, _ = trained
    shifted = customer_table(ROWS, seed=1)
    shifted.loc[: ROWS // 2, "plan"] = "enterprise"  # a category unseen in training
    current = _store(engine, tmp_path_factory.mktemp("shifted"), shifted)
    report = build_report(engine, current, model, None)
    drift = {row["feature"]: row for row in report_row(report, "run")["drift"]}
    assert drift["plan"]["test"] == "chi2" and drift["plan"]["new_categories"] > ROWS // 3
    assert drift["plan"]["drifted"] is True and drift["plan"]["ks_statistic"] is None
    assert drift["tenure_months"]["test"] == "ks"
    json.dumps(report_row(report, "run"), allow_nan=False)
