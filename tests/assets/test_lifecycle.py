"""The five assets end to end on the embedded default: real SQLite, a real MLflow store, real Dagster runs."""

from __future__ import annotations

import json

import pandas as pd
from mlflow.entities import ViewType
from mlflow.models import Model
from sqlalchemy import func, inspect, select

from mlplatform.appdb.predictions import count_batch, read_batch
from mlplatform.appdb.schema import dataset_versions, monitoring_reports


def _full_cycle(lifecycle, dataset: str) -> dict:
    results = {
        "load": lifecycle.load(dataset),
        "train": lifecycle.run("training_job", dataset),
        "predict": lifecycle.run("inference_job", dataset),
        "monitor": lifecycle.run("monitoring_job", dataset),
    }
    return results


def test_full_lifecycle_on_iris(lifecycle, tmp_path):
    results = _full_cycle(lifecycle, "iris")
    loaded = lifecycle.metadata(results["load"], "raw_dataset")
    assert (loaded["rows"], loaded["version"], loaded["new_version"]) == (150, 1, True)
    checks = results["load"].get_asset_check_evaluations()
    assert sorted(c.check_name for c in checks) == ["no_nulls", "target_present", "typed_schema"]
    assert all(c.passed for c in checks)

    registry = lifecycle.registry()
    client = registry.client
    candidate = client.get_model_version_by_alias("mlplatform_iris", "challenger")
    production = client.get_model_version_by_alias("mlplatform_iris", "Production")
    assert int(candidate.version) == int(production.version) == 1
    assert candidate.tags["dataset"] == "iris" and candidate.tags["metric"] == "accuracy"

    schema = json.loads(registry.load_text(candidate.run_id, "data_contract/input_schema.json"))
    assert schema["target_column"] == "target" and schema["task_type"] == "classification"
    assert [f["name"] for f in schema["features"]] == [
        "sepal_length_cm",
        "sepal_width_cm",
        "petal_length_cm",
        "petal_width_cm",
    ]
    metrics = json.loads(registry.load_text(candidate.run_id, "metrics/validation_metrics.json"))
    assert metrics["accuracy"] == float(candidate.tags["metric_value"])
    info = Model.load(client.download_artifacts(candidate.run_id, "model", str(tmp_path)))
    assert info.signature is not None and info.saved_input_example_info is not None

    predicted = lifecycle.metadata(results["predict"], "predictions")
    assert predicted["rows_written"] == 150
    batch = read_batch(lifecycle.engine, predicted["batch_id"])
    assert len(batch) == 150 and batch["row_id"].is_unique
    assert set(batch["model_name"]) == {"mlplatform_iris"} and set(batch["model_version"]) == {1}
    assert set(batch["model_alias"]) == {"Production"} and set(batch["mlflow_run_id"]) == {production.run_id}
    assert batch[["dataset_version", "created_at", "predicted_class"]].notna().all().all()
    assert all(abs(sum(p) - 1) < 1e-9 for p in batch["probabilities"])
    assert all(c == ["0", "1", "2"] for c in batch["classes"])

    monitored = lifecycle.metadata(results["monitor"], "monitoring_report")
    assert monitored["held_out_rows"] == 30 and 0.9 <= monitored["production_score"] <= 1.0
    with lifecycle.engine.connect() as conn:
        report = conn.execute(select(monitoring_reports)).mappings().one()
    assert report["mlflow_run_id"] == monitored["mlflow_run_id"] and len(report["drift"]) == 4
    assert client.get_run(report["mlflow_run_id"]).data.metrics["production_accuracy"] == report["production_score"]

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL)
    assert len(runs) == 6  # training: a parent and 4 candidates; monitoring: 1
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    # Every candidate run carries its parameters, metrics and contract; only the registered one its model.
    candidates = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(candidates) == 4 and all("algorithm" in r.data.params for r in candidates)
    for run in candidates:
        logged = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"data_contract", "metrics"} <= logged
        assert ("model" in logged) == (run.info.run_id == candidate.run_id), (run.data.params["algorithm"], logged)


def test_gate_keeps_production_when_candidate_is_not_better(lifecycle):
    lifecycle.load("wine")
    lifecycle.run("training_job", "wine")
    second = lifecycle.metadata(lifecycle.run("training_job", "wine"), "production_alias")
    assert second["promoted"] is False
    assert (second["candidate_version"], second["production_version"]) == (2, 1)
    assert second["candidate_score"] == second["previous_production_score"]
    client = lifecycle.registry().client
    assert int(client.get_model_version_by_alias("mlplatform_wine", "Production").version) == 1
    assert int(client.get_model_version_by_alias("mlplatform_wine", "challenger").version) == 2


def _iris_csv(path, noisy: bool):
    frame = pd.read_csv(_builtin_csv("iris"))
    if noisy:  # a production model trained on scrambled labels is easy to beat
        frame["species"] = frame["species"].sample(frac=1.0, random_state=3).to_numpy()
    frame.to_csv(path, index=False)
    return str(path)


def _builtin_csv(name: str):
    from io import StringIO

    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "species"})
    return StringIO(frame.to_csv(index=False))


def test_gate_promotes_a_better_candidate_and_respects_the_margin(lifecycle, tmp_path):
    lifecycle.load("flowers", _iris_csv(tmp_path / "noisy.csv", noisy=True), "species")
    lifecycle.run("training_job", "flowers")
    lifecycle.load("flowers", _iris_csv(tmp_path / "clean.csv", noisy=False), "species")

    blocked = lifecycle.run("training_job", "flowers", {"ops": {"production_alias": {"config": {"margin": 1.0}}}})
    kept = lifecycle.metadata(blocked, "production_alias")
    assert kept["promoted"] is False and kept["production_version"] == 1
    assert kept["candidate_score"] > kept["previous_production_score"]

    promoted = lifecycle.metadata(lifecycle.run("training_job", "flowers"), "production_alias")
    assert promoted["promoted"] is True and promoted["production_version"] == promoted["candidate_version"] == 3
    assert promoted["candidate_score"] > promoted["previous_production_score"]


def test_reloading_the_same_data_is_a_no_op(lifecycle):
    first = lifecycle.metadata(lifecycle.load("iris"), "raw_dataset")
    again = lifecycle.metadata(lifecycle.load("iris"), "raw_dataset")
    assert (first["version"], again["version"]) == (1, 1)
    assert (first["new_version"], again["new_version"]) == (True, False)
    with lifecycle.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dataset_versions)).scalar() == 1
    assert [t for t in inspect(lifecycle.engine).get_table_names() if t.startswith("ds_")] == ["ds_iris_v1"]


def test_repredicting_a_batch_replaces_it(lifecycle):
    lifecycle.load("iris")
    lifecycle.run("training_job", "iris")
    first = lifecycle.metadata(lifecycle.run("inference_job", "iris"), "predictions")
    written_first = read_batch(lifecycle.engine, first["batch_id"])
    second = lifecycle.metadata(lifecycle.run("inference_job", "iris"), "predictions")
    written_second = read_batch(lifecycle.engine, second["batch_id"])
    assert first["batch_id"] == second["batch_id"] and second["rows_written"] == 150
    assert count_batch(lifecycle.engine, second["batch_id"]) == 150  # replaced, not appended
    assert (written_second["created_at"] > written_first["created_at"]).all()  # every row was written again
    assert written_second["predicted_class"].tolist() == written_first["predicted_class"].tolist()


def test_datasets_do_not_overwrite_each_other(lifecycle):
    for dataset in ("iris", "wine"):
        lifecycle.load(dataset)
        lifecycle.run("training_job", dataset)
        lifecycle.run("inference_job", dataset)
    client = lifecycle.registry().client
    assert client.get_model_version_by_alias("mlplatform_iris", "Production").tags["dataset"] == "iris"
    assert client.get_model_version_by_alias("mlplatform_wine", "Production").tags["dataset"] == "wine"
    assert count_batch(lifecycle.engine, "iris-v1-mlplatform_iris-v1") == 150
    assert count_batch(lifecycle.engine, "wine-v1-mlplatform_wine-v1") == 178
