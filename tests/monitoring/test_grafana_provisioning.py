"""The Grafana provisioning and dashboards, offline: valid JSON, the names users depend on, datasource uids that
the provisioning defines, and queries that select only series something produces (the live test runs them too)."""

from __future__ import annotations

import re

from observability_stack import (
    DASHBOARDS_DIR,
    PROMETHEUS_YML,
    PROVISIONING_DIR,
    RULES_DIR,
    all_panels,
    alloy_relabel_rules,
    dashboards,
    load_yaml,
    panel_queries,
    promql_metric_names,
    target_datasource_uid,
)

# What the blackbox exporter's http prober and the gateway (platform/serving/gateway.py) expose.
BLACKBOX_METRICS = {
    "probe_success",
    "probe_duration_seconds",
    "probe_http_status_code",
    "probe_http_duration_seconds",
    "probe_http_content_length",
    "probe_http_version",
    "probe_http_ssl",
    "probe_http_redirects",
    "probe_dns_lookup_time_seconds",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_failed_due_to_regex",
    "probe_http_last_modified_timestamp_seconds",
    "probe_http_uncompressed_body_length",
}
GATEWAY_METRICS = {
    "mlflow_serve_requests_total",
    "mlflow_serve_request_errors_total",
    "mlflow_serve_request_duration_seconds_bucket",
    "mlflow_serve_request_duration_seconds_sum",
    "mlflow_serve_request_duration_seconds_count",
}
OLD_SERVING_QUERY = (
    'max by (model, alias) (probe_success{job="blackbox-mlflow-serve", model=~"$model", alias=~"$alias"})'
)


def exporter_metric_names(workdir) -> set[str]:
    """Every family the platform exporter produces: its readings over empty inputs (families without samples)."""
    from mlplatform.exporter import readings
    from mlplatform.exporter.collector import CachedCollector
    from mlplatform.model_registry import AliasNames
    from mlplatform.serving.state import ServingState

    families = [
        *readings.registry_metrics([], []),
        *readings.report_metrics([], AliasNames("Production", "challenger")),
        *readings.prediction_metrics([]),
        readings.alias_change_metrics([]),
        readings.dataset_metrics([]),
        *readings.dagster_metrics(None, {}),  # type: ignore[arg-type]  # no asset: the instance is not read
        *readings.serving_metrics(ServingState(workdir)),
        *CachedCollector({}, 60).collect(),
    ]
    return {f.name + ("_total" if f.type == "counter" else "") for f in families}


def recorded_names() -> set[str]:
    names = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in load_yaml(path)["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def provisioned_datasources() -> dict[str, dict]:
    sources = {}
    for path in (PROVISIONING_DIR / "datasources").glob("*.yml"):
        for source in load_yaml(path)["datasources"]:
            sources[source["uid"]] = source
    return sources


def by_title() -> dict[str, dict]:
    return {d["title"]: d for d in dashboards().values()}


def test_datasources_keep_the_old_uids():
    sources = provisioned_datasources()
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    assert sources["loki"]["type"] == "loki"
    assert sources["loki"]["url"] == "http://loki:3100"
    assert sum(bool(s.get("isDefault")) for s in sources.values()) == 1


def test_dashboard_provider_reads_the_dashboards_folder():
    providers = [p for path in (PROVISIONING_DIR / "dashboards").glob("*.yml") for p in load_yaml(path)["providers"]]
    assert providers, "no dashboard provider"
    for provider in providers:
        assert provider["type"] == "file"
        assert provider["options"]["path"].rstrip("/").endswith(DASHBOARDS_DIR.name), provider


def test_dashboards_are_valid_and_unique():
    boards = dashboards()
    assert {"Service Health Detailed", "MLflow Serving", "Model Quality"} <= {d["title"] for d in boards.values()}
    uids = [d["uid"] for d in boards.values()]
    assert len(uids) == len(set(uids)) and all(uids)
    for name, board in boards.items():
        ids = [p["id"] for p in all_panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in all_panels(board):
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), (name, panel["title"])


def test_every_query_uses_a_provisioned_datasource():
    sources = provisioned_datasources()
    for name, board in dashboards().items():
        for title, panel, target in panel_queries(board):
            uid = target_datasource_uid(panel, target)
            assert uid in sources, f"{name} / {title}: datasource uid {uid!r} is not provisioned"
            assert (target.get("datasource") or panel["datasource"])["type"] == sources[uid]["type"], (name, title)
        for variable in board.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] in sources, (name, variable["name"])


def test_prometheus_queries_select_only_produced_series(tmp_path):
    producible = BLACKBOX_METRICS | GATEWAY_METRICS | recorded_names() | {"up"} | exporter_metric_names(tmp_path)
    for name, board in dashboards().items():
        for title, panel, target in panel_queries(board):
            if target_datasource_uid(panel, target) != "prometheus":
                continue
            names = promql_metric_names(target["expr"])
            assert names, f"{name} / {title}: no metric in {target['expr']}"
            assert names <= producible, f"{name} / {title}: {names - producible} is produced by nothing"


def test_service_health_has_a_stat_per_probed_service():
    config = load_yaml(PROMETHEUS_YML)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "blackbox-http")
    probed = {t for group in job["static_configs"] for t in group["targets"]}
    board = by_title()["Service Health Detailed"]
    stats = [p for p in all_panels(board) if p["type"] == "stat"]
    shown = set()
    for panel in stats:
        (target,) = panel["targets"]
        match = re.fullmatch(r'probe_success\{job="blackbox-http", instance="([^"]+)"\}', target["expr"])
        assert match, target["expr"]
        shown.add(match.group(1))
    assert shown == probed
    tables = {p["title"]: p for p in all_panels(board) if p["type"] == "table"}
    assert any(
        'max by (model, alias) (probe_success{job="blackbox-mlflow-serve"})' == t["expr"]
        for t in tables["Model@alias UP"]["targets"]
    )
    ping_exprs = {t["expr"] for t in tables["/ping probes"]["targets"]}
    assert 'probe_success{job="blackbox-mlflow-serve"}' in ping_exprs


def test_mlflow_serving_keeps_the_old_queries_and_variables():
    board = by_title()["MLflow Serving"]
    exprs = [t["expr"] for _, _, t in panel_queries(board)]
    assert OLD_SERVING_QUERY in exprs
    assert any(e.startswith('sum by (alias) (probe_success{job="blackbox-mlflow-serve"') for e in exprs)
    assert any('probe_duration_seconds{job="blackbox-mlflow-serve"' in e for e in exprs)
    for metric in (
        "mlflow_serve_requests_total",
        "mlflow_serve_request_errors_total",
        "mlflow_serve_request_duration_seconds_bucket",
    ):
        assert any(metric in e for e in exprs), metric
    assert any("histogram_quantile(0.5," in e for e in exprs) and any("histogram_quantile(0.95," in e for e in exprs)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for name in ("model", "alias"):
        assert variables[name]["definition"] == f'label_values(probe_success{{job="blackbox-mlflow-serve"}}, {name})'
        assert variables[name]["query"]["query"] == variables[name]["definition"]


def test_loki_queries_use_labels_alloy_sets():
    rules = alloy_relabel_rules()
    labels = {r["target_label"] for r in rules if "target_label" in r and not r["target_label"].startswith("__")}
    labels.add("event")  # from the platform's JSON lines (loki.process "platform_json")
    values = {(r["target_label"], r["replacement"]) for r in rules if "replacement" in r and "target_label" in r}
    loki_queries = [
        (n, title, t["expr"])
        for n, b in dashboards().items()
        for title, p, t in panel_queries(b)
        if target_datasource_uid(p, t) == "loki"
    ]
    assert loki_queries, "no Loki panel"
    for name, title, expr in loki_queries:
        for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', expr):
            assert label in labels, f"{name} / {title}: Alloy sets no label {label!r}"
            if op == "=":
                assert (label, value) in values or "$" in value, f"{name} / {title}: {label}={value!r} is never set"
