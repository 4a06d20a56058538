"""`mlplatform observe` after a real lifecycle, all on loopback: iris loaded, trained, promoted, predicted and
monitored through the platform's Dagster jobs, mlplatform_iris@Production served (scoring server behind its
gateway) and called, then Prometheus, the Blackbox exporter and the platform exporter started by `mlplatform
observe --json` over the same home, with the shipped rules.

In order, on one stack: the URLs, the exporter's metrics with their values, every Prometheus query of every
dashboard and every alert expression, drift injected (a shifted dataset version and a monitoring run) until
FeatureDriftHigh is pending, and SIGTERM stopping all three servers.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import pytest
from dashboard_render import pictures_folder, render_dashboard

from mlplatform.appdb.datasets import latest_version, read_rows
from mlplatform.contract import load_sample_input
from mlplatform.serving.processes import base_environment
from mlplatform.serving.reconcile import stop_all
from mlplatform.serving.rollout import roll_out
from mlplatform.serving.scoring_client import invoke

from conftest import Lifecycle, embedded_settings
from observability_stack import (
    EXPORTER_PREFIX,
    MODEL_QUALITY_DASHBOARD,
    RULES_DIR,
    Prometheus,
    all_panels,
    dashboards,
    expand_grafana_variables,
    load_yaml,
    mlplatform_observe,
    panel_queries,
    promql_metric_names,
    target_datasource_uid,
    with_bool_comparison,
)

DATASET, MODEL, ALIAS = "iris", "mlplatform_iris", "Production"
ASSETS = {"raw_dataset", "candidate_model", "production_alias", "predictions", "monitoring_report"}
# Service Health Detailed probes the compose stack's services by their health URLs; observe runs none of them but
# Prometheus (test_live_monitoring.py runs that dashboard against the shipped configuration).
COMPOSE_ONLY_DASHBOARDS = {"service-health-detailed.json"}


@dataclass
class Stack:
    lifecycle: Lifecycle
    urls: dict
    prometheus: Prometheus
    observe: object
    gateway: str
    sample: object


@pytest.fixture(scope="module")
def stack(tmp_path_factory, migrated_mlflow_store):
    workdir = tmp_path_factory.mktemp("model-quality")
    settings = embedded_settings(workdir / "home", migrated_mlflow_store, MLPLATFORM_EXPORTER_CACHE_SECONDS="1")
    lifecycle = Lifecycle(settings)
    backend = lifecycle.serving()
    try:
        for job in ("data_load_job", "training_job", "inference_job", "monitoring_job"):
            lifecycle.run(job, DATASET)
        registry = lifecycle.registry()
        version = registry.require_alias(MODEL, ALIAS)
        served = roll_out(registry, lifecycle.engine, backend, MODEL, ALIAS, int(version.version), None, "test")
        gateway = served.address or ""
        sample = load_sample_input(registry, version.run_id)
        for _ in range(3):
            assert len(invoke(gateway, sample)) == len(sample)
        environment = settings.child_environment(base_environment())
        with mlplatform_observe(environment, workdir / "observe") as (urls, prometheus, process):
            yield Stack(lifecycle, urls, prometheus, process, gateway, sample)
    finally:
        stop_all(backend)
        lifecycle.instance.dispose()


def _values(prometheus: Prometheus, expr: str, key: str) -> dict[str, float]:
    result = prometheus.wait_until(f"{expr} scraped", lambda: prometheus.query(expr), timeout_s=30)
    return {sample["metric"].get(key, ""): float(sample["value"][1]) for sample in result}


def test_observe_prints_the_three_urls_once_they_answer(stack):
    assert set(stack.urls) == {"prometheus_url", "blackbox_url", "exporter_url"}
    for path, url in (("/-/ready", stack.urls["prometheus_url"]), ("/metrics", stack.urls["blackbox_url"])):
        with urllib.request.urlopen(url + path, timeout=5) as response:
            assert response.status == 200
    with urllib.request.urlopen(stack.urls["exporter_url"] + "/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'mlplatform_served_version{alias="Production",model="mlplatform_iris"} 1.0' in text


def test_exporter_metrics_after_the_lifecycle(stack):
    prometheus, iris = stack.prometheus, f'dataset="{DATASET}", model="{MODEL}"'
    assert _values(prometheus, 'mlplatform_exporter_source_up{job="mlplatform-exporter"}', "source") == {
        "mlflow": 1,
        "appdb": 1,
        "dagster": 1,
        "serving": 1,
    }
    assert _values(prometheus, "mlplatform_registered_models", "job") == {"mlplatform-exporter": 1}
    assert _values(prometheus, "mlplatform_model_versions", "model") == {MODEL: 1}
    assert _values(prometheus, f'mlplatform_model_alias_version{{model="{MODEL}"}}', "alias") == {
        "Production": 1,
        "challenger": 1,
    }
    assert _values(prometheus, "mlplatform_served_version", "alias") == {ALIAS: 1}
    scores = _values(prometheus, f"mlplatform_monitoring_score{{{iris}}}", "alias")
    assert set(scores) == {"Production", "challenger"} and all(0.8 <= s <= 1 for s in scores.values()), scores
    drifted = _values(prometheus, f"mlplatform_feature_drifted{{{iris}}}", "feature")
    assert len(drifted) == 4 and set(drifted.values()) == {0.0}, drifted  # same data as training: no drift
    assert set(_values(prometheus, f"mlplatform_feature_drift_pvalue{{{iris}}}", "test")) == {"ks"}
    assert _values(prometheus, f"mlplatform_predictions_latest_batch_rows{{{iris}}}", "role") == {"production": 150}
    ages = _values(prometheus, f'mlplatform_asset_materialization_age_seconds{{dataset="{DATASET}"}}', "asset")
    assert set(ages) == ASSETS and all(0 <= age < 600 for age in ages.values()), ages
    assert _values(prometheus, "mlplatform_asset_schedule_interval_seconds", "asset")["predictions"] == 3600
    changes = _values(prometheus, f'mlplatform_alias_changes_total{{model="{MODEL}", actor_kind="dagster"}}', "alias")
    assert changes == {"challenger": 1, "Production": 1}, changes  # by the training run and the gate
    # labels stay bounded: no run or batch ids anywhere
    for name in prometheus.metric_names():
        if name.startswith(EXPORTER_PREFIX):
            for sample in prometheus.query(name):
                assert not {"run_id", "batch_id", "batch", "row"} & set(sample["metric"]), sample


def test_every_dashboard_query_and_variable_returns_data(stack):
    prometheus = stack.prometheus
    variables = {"dataset": DATASET, "model": MODEL, "alias": ALIAS}
    prometheus.wait_until(
        "gateway metrics and recorded drift share present",
        lambda: (
            {"mlflow_serve_requests_total", "dataset_model:mlplatform_feature_drifted:share"}
            <= prometheus.metric_names()
        ),
        timeout_s=30,
    )
    checked = set()
    for board_name, board in dashboards().items():
        if board_name in COMPOSE_ONLY_DASHBOARDS:
            continue
        for title, panel, target in panel_queries(board):
            if target_datasource_uid(panel, target) != "prometheus":
                continue
            expr = expand_grafana_variables(target["expr"], variables, rate_interval="1m")
            names = promql_metric_names(expr)
            prometheus.wait_until(  # a recording rule's series appears at its first evaluation after two scrapes
                f"{board_name} / {title}: every series of {sorted(names)} in Prometheus",
                lambda names=names: names <= prometheus.metric_names(),
                timeout_s=60,
            )
            result = prometheus.wait_until(
                f"{board_name} / {title}: {expr}", lambda expr=expr: prometheus.query(expr), timeout_s=30
            )
            assert result
            checked.add(board_name)
        for variable in board.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                selector, label = variable["definition"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
                values = prometheus.api(f"label/{label}/values", **{"match[]": selector})
                assert variables[label] in values, (board_name, variable["name"], values)
    assert checked == {"model-quality.json", "mlflow-serving.json"}


def test_dashboard_pictures_render_from_the_same_queries(stack):
    """The README's pictures of the three dashboards, drawn from their own queries against this Prometheus (after
    some traffic through the gateway while Prometheus watches, so rates and latencies have something to show)."""
    for _ in range(20):
        invoke(stack.gateway, stack.sample)
        time.sleep(0.5)
    variables = {"dataset": DATASET, "model": MODEL, "alias": ALIAS}
    folder = pictures_folder()
    for board_name, board in dashboards().items():
        path = folder / board_name.replace(".json", ".png")
        shown = render_dashboard(board, stack.prometheus, variables, path)
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 200, (board_name, image.shape)
        panels = [p for p in all_panels(board) if p.get("targets")]
        if board_name == MODEL_QUALITY_DASHBOARD:
            assert shown == len(panels), f"{board_name}: {shown} of {len(panels)} panels drawn with data"
        else:
            assert shown >= 1, board_name


def test_every_rule_evaluates_on_live_series(stack):
    """Every alert of every rule file selects live series (queried with its comparison made ``bool``), every
    recording rule records, and every rule evaluates without error."""
    prometheus = stack.prometheus
    rules = [rule for path in sorted(RULES_DIR.glob("*.yml")) for g in load_yaml(path)["groups"] for rule in g["rules"]]
    alerts = [rule for rule in rules if "alert" in rule]
    assert {"FeatureDriftHigh", "ProductionQualityLow", "AssetStale", "PlatformExporterDown"} <= {
        a["alert"] for a in alerts
    }
    for rule in rules:
        expr = with_bool_comparison(rule["expr"]) if "alert" in rule else rule["record"]
        name = rule.get("alert") or rule["record"]
        prometheus.wait_until(f"{name}: {expr}", lambda expr=expr: prometheus.query(expr), timeout_s=60)
    loaded = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert len(loaded) == len(rules)
    assert all(r["health"] == "ok" for r in loaded), [r for r in loaded if r["health"] != "ok"]
    firing = {a["labels"]["alertname"] for a in prometheus.alerts()}
    assert not firing & {"FeatureDriftHigh", "ProductionQualityLow", "AssetStale", "PlatformExporterDown"}, firing


def test_injected_drift_makes_feature_drift_high_pending(stack):
    """A shifted iris (every feature moved by three standard deviations) loaded as a new version and monitored:
    the report flags the features, the exporter exports them and FeatureDriftHigh goes pending for iris."""
    lifecycle = stack.lifecycle
    frame = read_rows(lifecycle.engine, latest_version(lifecycle.engine, DATASET))
    features = [c for c in frame.columns if c != "target"]
    assert len(features) == 4, frame.columns
    shifted = frame.assign(**{c: frame[c] + 3 * frame[c].std() for c in features})
    data_dir = Path(lifecycle.settings.home) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    shifted.to_csv(data_dir / "iris_shifted.csv", index=False)
    lifecycle.load(DATASET, source=str(data_dir / "iris_shifted.csv"), target="target")
    lifecycle.run("monitoring_job", DATASET)
    prometheus = stack.prometheus
    share = f'dataset_model:mlplatform_feature_drifted:share{{dataset="{DATASET}", model="{MODEL}"}}'
    prometheus.wait_until(
        "drift share above 30 %", lambda: [s for s in prometheus.query(share) if float(s["value"][1]) > 0.3]
    )

    def drift_alert():
        return [
            a
            for a in prometheus.alerts()
            if a["labels"]["alertname"] == "FeatureDriftHigh" and a["labels"].get("dataset") == DATASET
        ]

    (alert,) = prometheus.wait_until("FeatureDriftHigh for iris", drift_alert, timeout_s=30)
    assert alert["state"] == "pending" and alert["labels"]["model"] == MODEL


def test_sigterm_stops_all_three(stack):
    stack.observe.send_signal(signal.SIGTERM)
    assert stack.observe.wait(timeout=60) == 0
    for url in stack.urls.values():
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url + "/metrics", timeout=2)
