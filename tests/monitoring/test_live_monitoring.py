"""The shipped monitoring configuration against real processes, all on loopback:

a real gateway (``python -m mlplatform.serving.gateway``) in front of a tiny upstream, the serving targets file
written by the platform's own ServingState, the real blackbox exporter with the shipped blackbox.yml, and the real
Prometheus with the shipped prometheus.yml and rules (addresses, paths and intervals rewritten for loopback).

The tests of this module run in order on one stack: probes and scrapes, the ServiceDown direction, every dashboard
query, a version switch followed through the targets file, and finally the gateway stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlplatform.serving.naming import server_name
from mlplatform.serving.processes import free_port
from mlplatform.serving.state import ServerRecord, ServingState, Upstream, write_upstream

from observability_stack import (
    EXPORTER_PREFIX,
    MODEL_QUALITY_DASHBOARD,
    PROMETHEUS_YML,
    RULES_DIR,
    Prometheus,
    blackbox_exporter,
    dashboards,
    expand_grafana_variables,
    load_yaml,
    loopback_prometheus_config,
    panel_queries,
    prometheus_server,
    promql_metric_names,
    target_datasource_uid,
)
from processes import stop, wait_for_http

MODEL, ALIAS = "m", "Production"
UP_SERVICES = {"mlflow", "prometheus"}  # rewritten to live loopback servers; the others to a closed port


class _Upstream(BaseHTTPRequestHandler):
    """Stands in for `mlflow models serve`: /ping and /health 200, /invocations {"predictions": [1]} (500 when the
    payload asks for it, to produce errors)."""

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        if self.path in ("/ping", "/health"):
            self._send(200, b"\n", "text/plain")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/invocations":
            self._send(404, b'{"error": "not found"}')
        elif b"fail" in body:
            self._send(500, b'{"error_code": "INTERNAL_ERROR"}')
        else:
            self._send(200, json.dumps({"predictions": [1]}).encode())

    def log_message(self, *args):
        pass


def _start_upstream() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _invoke(url: str, payload: dict) -> int:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _traffic(url: str, ok: int = 5, failing: int = 1) -> None:
    for _ in range(ok):
        assert _invoke(url, {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}) == 200
    for _ in range(failing):
        assert _invoke(url, {"fail": True}) == 500


@dataclass
class Stack:
    prometheus: Prometheus
    gateway: subprocess.Popen
    gateway_url: str
    state: ServingState
    name: str
    upstreams: list
    service_instances: dict  # service label -> instance URL after the rewrite
    rewritten_instances: dict  # shipped health URL -> the loopback URL that replaced it


def _publish(state: ServingState, name: str, gateway_url: str, gateway_pid: int, upstream: Upstream) -> None:
    """What a serving backend does on start and switch: the upstream file the gateway follows, then the records
    (ServingState writes targets.json from them)."""
    write_upstream(state.upstream_file(name), upstream)
    with state.locked() as records:
        records[name] = ServerRecord(
            name=name, model=MODEL, alias=ALIAS, address=gateway_url, gateway=str(gateway_pid), upstream=upstream
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("observability")
    upstream_server, upstream_url = _start_upstream()
    second_server, second_url = _start_upstream()
    state = ServingState(workdir / "serving")
    name = server_name(MODEL, ALIAS)
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    write_upstream(state.upstream_file(name), Upstream(version=1, address=upstream_url, handle="upstream-1"))
    gateway_log = workdir / "gateway.log"
    with open(gateway_log, "wb") as out:
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlplatform.serving.gateway",
                "--model",
                MODEL,
                "--alias",
                ALIAS,
                "--port",
                str(gateway_port),
                "--upstream-file",
                str(state.upstream_file(name)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_http(f"{gateway_url}/ping", gateway, gateway_log, timeout_s=30)
        _publish(state, name, gateway_url, gateway.pid, Upstream(version=1, address=upstream_url, handle="upstream-1"))
        assert json.loads(state.targets_file.read_text())[0]["labels"]["version"] == "1"
        _traffic(gateway_url)
        with blackbox_exporter(workdir) as blackbox:
            prometheus_port = free_port()
            addresses = {
                "prometheus:9090": f"127.0.0.1:{prometheus_port}",
                "localhost:9090": f"127.0.0.1:{prometheus_port}",
                "mlflow:5000": upstream_url.removeprefix("http://"),
            }
            config = loopback_prometheus_config(
                addresses, unreachable=f"127.0.0.1:{free_port()}", blackbox=blackbox, targets_file=state.targets_file
            )
            http_job = next(j for j in config["scrape_configs"] if j["job_name"] == "blackbox-http")
            service_instances = {g["labels"]["service"]: g["targets"][0] for g in http_job["static_configs"]}
            shipped_job = next(
                j for j in load_yaml(PROMETHEUS_YML)["scrape_configs"] if j["job_name"] == "blackbox-http"
            )
            rewritten = {
                g["targets"][0]: service_instances[g["labels"]["service"]] for g in shipped_job["static_configs"]
            }
            with prometheus_server(config, workdir / "prometheus", port=prometheus_port) as prometheus:
                yield Stack(
                    prometheus,
                    gateway,
                    gateway_url,
                    state,
                    name,
                    [upstream_url, second_url],
                    service_instances,
                    rewritten,
                )
    finally:
        stop(gateway)
        upstream_server.shutdown()
        second_server.shutdown()


SERVE_PROBE = f'probe_success{{job="blackbox-mlflow-serve", model="{MODEL}", alias="{ALIAS}"}}'


def test_gateway_probe_follows_the_targets_file(stack):
    (sample,) = stack.prometheus.wait_for_value(SERVE_PROBE, 1)
    labels = sample["metric"]
    assert labels["version"] == "1"
    assert labels["server"] == stack.name
    assert labels["instance"] == f"{stack.gateway_url}/ping"


def test_gateway_metrics_are_scraped_with_model_alias_version(stack):
    expr = (
        f'mlflow_serve_requests_total{{job="mlflow-serve-metrics", model="{MODEL}", alias="{ALIAS}", '
        f'version="1", endpoint="invocations", code="200"}}'
    )
    (sample,) = stack.prometheus.wait_until(f"{expr} scraped", lambda: stack.prometheus.query(expr))
    assert float(sample["value"][1]) >= 5
    errors = f'mlflow_serve_request_errors_total{{job="mlflow-serve-metrics", model="{MODEL}", alias="{ALIAS}"}}'
    assert stack.prometheus.wait_until("errors scraped", lambda: stack.prometheus.query(errors))
    # honor_labels: exactly one model/alias/version, the gateway's (no exported_* duplicates)
    assert not stack.prometheus.query('{job="mlflow-serve-metrics", exported_version=~".+"}')


def test_service_probes_and_service_down_direction(stack):
    """Live: the probes of the services that answer succeed, the others fail, and ServiceDown goes pending exactly
    for the failing ones (the old stack's alert did the opposite)."""
    prometheus = stack.prometheus

    def all_probed():
        result = prometheus.query('probe_success{job="blackbox-http"}')
        return result if len(result) == len(stack.service_instances) else None

    result = prometheus.wait_until("every blackbox-http target probed", all_probed)
    status = {s["metric"]["service"]: float(s["value"][1]) for s in result}
    assert status == {service: 1.0 if service in UP_SERVICES else 0.0 for service in stack.service_instances}
    for sample in result:
        assert sample["metric"]["instance"] == stack.service_instances[sample["metric"]["service"]]

    def service_down_alerts():
        alerts = [a for a in prometheus.alerts() if a["labels"]["alertname"] == "ServiceDown"]
        return (
            alerts if {a["labels"]["service"] for a in alerts} == set(stack.service_instances) - UP_SERVICES else None
        )

    alerts = prometheus.wait_until("ServiceDown pending for every down service, and only those", service_down_alerts)
    assert all(a["state"] == "pending" for a in alerts)  # `for: 2m` not elapsed yet


def test_rules_load_and_evaluate(stack):
    prometheus = stack.prometheus

    def evaluated():
        groups = prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

    rules = prometheus.wait_until("every rule evaluated", evaluated)
    assert len({g["file"] for g in prometheus.api("rules")["groups"]}) == len(list(RULES_DIR.glob("*.yml")))
    for rule in rules:
        assert rule["health"] == "ok", rule
    ratio = f'model_alias:mlflow_serve_invocation_error_ratio:rate5m{{model="{MODEL}", alias="{ALIAS}"}}'
    prometheus.wait_until(f"{ratio} recorded", lambda: prometheus.query(ratio))
    # every metric a rule selects exists in this Prometheus or is recorded by a rule; the platform exporter's
    # (mlplatform_*) do not run in this stack: test_model_quality_live.py evaluates those rules on live series
    recorded = {r["name"] for r in rules if r["type"] == "recording"}
    live = prometheus.metric_names()
    for rule in rules:
        missing = {n for n in promql_metric_names(rule["query"]) - live - recorded if not n.startswith(EXPORTER_PREFIX)}
        assert not missing, f"{rule['name']}: {missing} exists nowhere"


def test_every_dashboard_query_returns_data(stack):
    """Each Prometheus query of each panel and variable, with the variables set to the live model@alias, runs
    without error, returns series, and names only metrics this Prometheus has."""
    prometheus = stack.prometheus
    variables = {"model": MODEL, "alias": ALIAS}
    names = prometheus.wait_until(
        "gateway, probe and recorded series present",
        lambda: (
            (n := prometheus.metric_names())
            >= {
                "probe_success",
                "probe_duration_seconds",
                "probe_http_status_code",
                "mlflow_serve_requests_total",
                "mlflow_serve_request_errors_total",
                "mlflow_serve_request_duration_seconds_bucket",
                "model_alias:mlflow_serve_invocation_error_ratio:rate5m",
            }
            and n
        ),
    )
    checked = 0
    for board_name, board in dashboards().items():
        if board_name == MODEL_QUALITY_DASHBOARD:  # the exporter's metrics: test_model_quality_live.py
            continue
        for title, panel, target in panel_queries(board):
            if target_datasource_uid(panel, target) != "prometheus":
                continue
            expr = expand_grafana_variables(target["expr"], variables, rate_interval="30s")
            for shipped, loopback in stack.rewritten_instances.items():  # the same rewrite as the config's
                expr = expr.replace(f'instance="{shipped}"', f'instance="{loopback}"')
            assert promql_metric_names(expr) <= names, f"{board_name} / {title}: {promql_metric_names(expr) - names}"
            result = prometheus.wait_until(
                f"{board_name} / {title}: {expr}", lambda expr=expr: prometheus.query(expr), timeout_s=10
            )
            assert result
            checked += 1
        for variable in board.get("templating", {}).get("list", []):
            if variable["type"] != "query":
                continue
            selector, label = variable["definition"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
            values = prometheus.api(f"label/{label}/values", **{"match[]": selector})
            assert variables[label] in values, (board_name, variable["name"], values)
    assert checked >= 10


def test_version_switch_is_followed_through_the_targets_file(stack):
    """A backend switching m@Production to version 2 rewrites upstream.json and targets.json: the probe's version
    label follows, and the gateway's metrics count the new version's requests."""
    second = Upstream(version=2, address=stack.upstreams[1], handle="upstream-2")
    _publish(stack.state, stack.name, stack.gateway_url, stack.gateway.pid, second)
    stack.prometheus.wait_for_value(f'{SERVE_PROBE[:-1]}, version="2"}}', 1, timeout_s=20)
    stack.prometheus.wait_until(
        "requests counted for the gateway's current version",
        lambda: (
            json.loads(urllib.request.urlopen(f"{stack.gateway_url}/-/upstream", timeout=5).read())["version"] == "2"
        ),
    )
    _traffic(stack.gateway_url, ok=3, failing=0)
    expr = f'mlflow_serve_requests_total{{model="{MODEL}", alias="{ALIAS}", version="2", endpoint="invocations"}}'
    stack.prometheus.wait_until(f"{expr} scraped", lambda: stack.prometheus.query(expr))


def test_stopped_gateway_drops_probe_success_to_zero(stack):
    """Last: the gateway stops; its probe fails, ModelServerDown goes pending for m@Production."""
    stop(stack.gateway)
    current = f'{SERVE_PROBE[:-1]}, version="2"}}'
    stack.prometheus.wait_for_value(current, 0, timeout_s=20)
    stack.prometheus.wait_for_value(f'up{{job="mlflow-serve-metrics", model="{MODEL}", alias="{ALIAS}"}}', 0)

    def model_server_down():
        return [
            a
            for a in stack.prometheus.alerts()
            if a["labels"]["alertname"] == "ModelServerDown"
            and a["labels"].get("model") == MODEL
            and a["labels"].get("alias") == ALIAS
        ]

    (alert,) = stack.prometheus.wait_until("ModelServerDown for m@Production", model_server_down)
    assert alert["state"] == "pending"
