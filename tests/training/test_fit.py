"""The candidate pipelines, fitting them, and picking the best."""

from __future__ import annotations

import pytest
from sklearn.pipeline import Pipeline
from tables import customer_table

from mlplatform.datasets.sources import read_source
from mlplatform.training.candidates import candidate_pipelines
from mlplatform.training.fit import FittedCandidate, best_candidate, fit_candidates
from mlplatform.training.split import SplitSpec, split

ALGORITHMS = {
    "classification": ["logistic_regression", "random_forest", "svm", "hist_gradient_boosting"],
    "regression": ["ridge", "random_forest", "svr", "hist_gradient_boosting"],
}


@pytest.mark.parametrize("task_type", ["classification", "regression"])
def test_four_candidates_per_task_type_on_small_tables_each_ending_in_model(task_type):
    pipelines = candidate_pipelines(task_type, seed=0)
    assert list(pipelines) == ALGORITHMS[task_type]
    for pipeline in pipelines.values():
        assert isinstance(pipeline, Pipeline)
        assert pipeline.steps[-1][0] == "model"


@pytest.mark.parametrize(
    "rows, expected",
    [
        (5_000, ["logistic_regression", "random_forest", "svm", "hist_gradient_boosting"]),
        (5_001, ["logistic_regression", "random_forest", "hist_gradient_boosting"]),
        (50_000, ["logistic_regression", "hist_gradient_boosting"]),
    ],
)
def test_the_candidate_set_follows_the_table_size(rows, expected):
    assert list(candidate_pipelines("classification", 0, ["x"], ["c"], rows)) == expected


def test_candidates_are_fresh_and_seeded():
    first, second = candidate_pipelines("classification", seed=5), candidate_pipelines("classification", seed=5)
    assert first["random_forest"] is not second["random_forest"]
    assert first["random_forest"].named_steps["model"].random_state == 5


def test_unknown_task_type_raises():
    with pytest.raises(ValueError, match="unknown task type 'clustering'"):
        candidate_pipelines("clustering", seed=0)


def test_fit_candidates_on_iris():
    data = read_source("iris")
    train, validation = split(data.frame, data.target, data.task_type, SplitSpec(seed=0))
    fitted = fit_candidates(train, validation, data.features, data.target, data.task_type, seed=0)
    assert [c.algorithm for c in fitted] == ALGORITHMS["classification"]
    for candidate in fitted:
        assert set(candidate.metrics) == {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc"}
        assert all(0.0 <= value <= 1.0 for value in candidate.metrics.values())
        assert candidate.metrics["accuracy"] > 0.8  # iris is easy: anything less means the fit is broken
        assert set(candidate.pipeline.predict(validation[data.features])) <= {0, 1, 2}
    best = best_candidate(fitted, "accuracy")
    assert best.metrics["accuracy"] == max(c.metrics["accuracy"] for c in fitted)


def test_fit_candidates_regression_metrics():
    data = read_source("diabetes")
    train, validation = split(data.frame, data.target, data.task_type, SplitSpec(seed=0))
    fitted = fit_candidates(train, validation, data.features, data.target, data.task_type, seed=0)
    assert [c.algorithm for c in fitted] == ALGORITHMS["regression"]
    for candidate in fitted:
        assert set(candidate.metrics) == {"rmse", "mae", "r2"}
        assert 0 < candidate.metrics["mae"] <= candidate.metrics["rmse"]
    assert best_candidate(fitted, "rmse").metrics["rmse"] == min(c.metrics["rmse"] for c in fitted)


def candidates(metric: str, values: list[float]) -> list[FittedCandidate]:
    return [FittedCandidate(f"algo_{i}", Pipeline([("model", None)]), {metric: v}) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    "task_type, metric, values, winner",
    [
        ("classification", "accuracy", [0.8, 0.95, 0.9], "algo_1"),
        ("classification", "accuracy", [0.9, 0.9, 0.9], "algo_0"),  # tie: the first wins
        ("classification", "accuracy", [0.7, 0.9, 0.9], "algo_1"),
        ("regression", "rmse", [3.0, 1.5, 2.0], "algo_1"),  # lower is better
        ("regression", "rmse", [2.0, 2.0, 1.0], "algo_2"),
        ("regression", "rmse", [1.0, 2.0, 1.0], "algo_0"),  # tie: the first wins
    ],
)
def test_best_candidate(task_type, metric, values, winner):
    assert best_candidate(candidates(metric, values), metric).algorithm == winner


def test_pipelines_take_raw_columns_and_count_unknown_categories():

    from mlplatform.inference import unknown_categories
    from mlplatform.training.categories import known_categories

    frame = customer_table(200).drop(columns="customer_id")
    numeric, categorical = ["tenure_months", "monthly_spend"], ["plan", "region", "autopay"]
    fresh = frame.assign(plan=["gold"] * 3 + list(frame["plan"][3:]))
    for name, pipeline in candidate_pipelines("classification", 0, numeric, categorical, len(frame)).items():
        pipeline.fit(frame[numeric + categorical], frame["churned"])
        assert set(pipeline.predict(fresh[numeric + categorical])) <= {"yes", "no"}, name
        known = known_categories(pipeline)
        assert known["plan"] == {"basic", "plus", "premium"}
        assert unknown_categories(fresh, known) == {"plan": 3}
