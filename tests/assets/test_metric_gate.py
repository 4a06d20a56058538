"""The primary metric is configurable per training, and the gate judges with it: the same data and split, judged on
accuracy, keep production; judged on ROC AUC, they promote the candidate that metric prefers."""

from __future__ import annotations

from tables import customer_table, write_csv


def _train(lifecycle, metric: str) -> tuple[dict, dict]:
    config = {"ops": {"candidate_model": {"config": {"seed": 0, "metric": metric}}}}
    result = lifecycle.run("training_job", "customers", config)
    return lifecycle.metadata(result, "candidate_model"), lifecycle.metadata(result, "production_alias")


def test_the_configured_metric_moves_the_gate(lifecycle, tmp_path):
    # On this table and split the SVM has the best validation accuracy, logistic regression the best ROC AUC.
    csv = write_csv(customer_table(200, seed=3), tmp_path / "customers.csv")
    lifecycle.load("customers", str(csv), "churned")
    first, gate = _train(lifecycle, "accuracy")
    assert (first["algorithm"], first["metric"], gate["promoted"]) == ("svm", "accuracy", True)

    same, gate = _train(lifecycle, "accuracy")
    assert same["algorithm"] == "svm" and gate["metric"] == "accuracy"
    assert gate["promoted"] is False and "does not beat production" in gate["reason"]

    other, gate = _train(lifecycle, "roc_auc")
    assert other["algorithm"] == "logistic_regression" and gate["metric"] == "roc_auc"
    assert gate["promoted"] is True and gate["reason"].startswith("candidate roc_auc ")
    assert gate["candidate_score"] > gate["previous_production_score"]
    assert "per_class_scores" in other and "permutation_importance" in other
