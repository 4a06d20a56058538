"""``mlplatform demo``: the whole lifecycle on the embedded default, then a real serving round trip."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from mlplatform.settings import Settings

STEPS = ("load", "train", "predict", "monitor", "serve")
QUIET = "WARNING"  # the demo shows its own progress; every run's full log is in the Dagster UI


class Progress:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, key: str, label: str):
        number = len(self.seconds) + 1
        print(f"[{number}/{len(STEPS)}] {label} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        yield
        self.seconds[key] = round(time.perf_counter() - started, 2)
        print(f"      done in {self.seconds[key]:.1f} s", file=sys.stderr, flush=True)


def run_demo(
    home: str | None, dataset: str, target: str | None, keep_serving: bool = False, load_options: dict | None = None
) -> dict:
    """``load_options``: raw_dataset's other run config (categorical, drop, encoding, table, query)."""
    started = time.perf_counter()
    settings = Settings.load(home)
    from mlplatform import dagster_home
    from mlplatform.datasets.feature_types import TypeOverrides
    from mlplatform.datasets.sources import SourceRequest, check_source
    from mlplatform.definitions import build_definitions
    from mlplatform.runner import materialization_metadata, run_job

    options = {k: v for k, v in (load_options or {}).items() if v}
    overrides = TypeOverrides.parse(options.get("categorical", ()), options.get("drop", ()))
    request = SourceRequest(
        dataset, target, None, overrides, options.get("encoding"), options.get("table"), options.get("query")
    )
    name = check_source(request).name  # reads the source through (bounded memory): refusals before anything runs
    instance = dagster_home.instance(settings)
    defs = build_definitions(settings, environ={}, files_from_anywhere=True)  # the user reads their own files
    progress = Progress()
    with _scoring_warmed(defs):
        source_config = {"source": dataset, "target": target or "", **options}
        load_config = {"ops": {"raw_dataset": {"config": source_config}}}
        with progress.step("load", f"load dataset {name} into app-db"):
            loaded = materialization_metadata(
                run_job(defs, instance, "data_load_job", name, load_config, QUIET), "raw_dataset"
            )
        with progress.step("train", "train candidates, register the best, run the promotion gate"):
            trained = run_job(defs, instance, "training_job", name, log_level=QUIET)
            candidate = materialization_metadata(trained, "candidate_model")
            gate = materialization_metadata(trained, "production_alias")
        with _serving_started(defs, gate["model_name"], keep_serving) as rolled_out:
            with progress.step("predict", "batch inference with the production model"):
                predicted = materialization_metadata(
                    run_job(defs, instance, "inference_job", name, log_level=QUIET), "predictions"
                )
            with progress.step("monitor", "monitoring report: held-out scores and drift"):
                monitored = materialization_metadata(
                    run_job(defs, instance, "monitoring_job", name, log_level=QUIET), "monitoring_report"
                )
            served = f"{gate['model_name']}@{settings.production_alias}"
            with progress.step("serve", f"serve {served} (started after training) and check /invocations"):
                serving = _check_serving(defs, rolled_out.result(), predicted["batch_id"], keep_serving)

    production_score = gate["candidate_score"] if gate["promoted"] else gate["previous_production_score"]
    return {
        "home": str(settings.home),
        "dataset": {
            "name": name,
            "version": loaded["version"],
            "rows": loaded["rows"],
            "new_version": loaded["new_version"],
        },
        "model": {
            "name": gate["model_name"],
            "candidate_version": candidate["version"],
            "production_version": gate["production_version"],
            "promoted": gate["promoted"],
            "decision": gate["reason"],
            "metric": gate["metric"],
            "value": production_score,
        },
        "predictions": {"rows_written": predicted["rows_written"], "batch_id": predicted["batch_id"]},
        "serving": serving,
        "monitoring": {
            "metric": monitored["metric"],
            "production_score": monitored["production_score"],
            "candidate_score": monitored["candidate_score"],
            "drifted_features": monitored["drifted_features"],
            "held_out_rows": monitored["held_out_rows"],
        },
        "seconds": {**progress.seconds, "total": round(time.perf_counter() - started, 2)},
    }


@contextmanager
def _scoring_warmed(defs) -> Iterator[None]:
    """Start the serving home's scoring process in the background while the lifecycle runs, so its start-up (about
    7 s of imports on this machine kind) overlaps loading and training instead of following them; if nothing was
    loaded into it by the end (a step failed), it is stopped. The tracking store is opened first: two processes
    creating a fresh SQLite store at the same moment race on its migrations."""
    from mlplatform.serving.local_backend import LocalProcessBackend
    from mlplatform.serving.scoring_client import ServerError

    backend = defs.resources["serving"].open()
    if not isinstance(backend, LocalProcessBackend):  # other backends start a server per version
        yield
        return
    defs.resources["mlflow"].registry().client.search_experiments(max_results=1)

    def warm() -> None:
        try:
            backend.scoring.warm()
        except ServerError:
            pass  # the serve step starts one itself and reports why it failed

    warming = threading.Thread(target=warm, name="scoring-warm", daemon=True)
    warming.start()
    try:
        yield
    finally:
        warming.join()
        backend.scoring.release()


@dataclass(frozen=True)
class Served:
    model: str
    alias: str
    version: int
    run_id: str
    address: str


@contextmanager
def _serving_started(defs, model_name: str, keep_serving: bool) -> Iterator[Future[Served]]:
    """Serve the production version the way the alias sensor's runs do (scoring server behind the model@alias
    gateway), in a thread beside batch inference and monitoring: the model's load and the gateway's start run in
    their own processes, so the demo waits for them once instead of after every other step. On the way out the
    server is stopped unless ``keep_serving``, whatever happened in between."""
    from mlplatform.serving.reconcile import stop

    resources = defs.resources
    registry, backend = resources["mlflow"].registry(), resources["serving"].open()

    def start() -> Served:
        from mlplatform.serving.rollout import roll_out

        alias = registry.aliases.production
        version = registry.require_alias(model_name, alias)
        engine = resources["app_db"].engine
        served = roll_out(registry, engine, backend, model_name, alias, int(version.version), None, "mlplatform demo")
        # roll_out of a version always ends with a served address
        return Served(model_name, alias, int(version.version), version.run_id, served.address or "")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-serve") as pool:
        started = pool.submit(start)
        try:
            yield started
        finally:
            wait([started])
            if not keep_serving:
                stop(backend, model_name, registry.aliases.production)


def _check_serving(defs, served: Served, batch: str, keep_serving: bool) -> dict:
    """Send the served model its sample input and compare the answers with the batch predictions."""
    from mlplatform.appdb.predictions import read_batch
    from mlplatform.contract import load_sample_input
    from mlplatform.serving.scoring_client import invoke

    registry, engine = defs.resources["mlflow"].registry(), defs.resources["app_db"].engine
    sample = load_sample_input(registry, served.run_id)
    answers = invoke(served.address, sample)
    expected = _batch_answers(engine, read_batch(engine, batch), sample)
    return {
        "url": served.address,
        "model": served.model,
        "alias": served.alias,
        "version": served.version,
        "rows_sent": len(sample),
        "invocation_ok": _same_answers(answers, expected),
        "still_serving": keep_serving,
    }


def _batch_answers(engine, batch: pd.DataFrame, sample: pd.DataFrame) -> list:
    """The batch predictions for the sample's rows, found by their feature values in the dataset version."""
    from mlplatform.appdb.datasets import get_version, read_rows

    first = batch.iloc[0]
    rows = read_rows(engine, get_version(engine, first["dataset"], int(first["dataset_version"])))
    keyed = _gaps_as_none(rows[list(sample.columns)]).drop_duplicates().reset_index()
    matched = _gaps_as_none(sample).merge(keyed, on=list(sample.columns), how="left", validate="many_to_one")
    by_row = batch.set_index("row_id")
    column = "predicted_class" if first["predicted_class"] is not None else "predicted_value"
    return [by_row.at[int(r), column] if pd.notna(r) else None for r in matched["row_id"]]


def _gaps_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """One marker for a gap (app-db gives None or NaN, CSV gives NaN), so rows match on their raw values."""
    return frame.astype(object).where(frame.notna(), None)


def _same_answers(answers: list, expected: list) -> bool:
    if len(answers) != len(expected) or any(e is None for e in expected):
        return False
    if isinstance(expected[0], str):
        return [str(a) for a in answers] == expected
    return all(abs(float(a) - float(e)) <= 1e-9 * max(1.0, abs(float(e))) for a, e in zip(answers, expected))
