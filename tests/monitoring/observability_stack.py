"""The shipped monitoring/ configuration, run for real: Debian's prometheus, promtool and blackbox exporter on free
loopback ports. Configs are the shipped files, rewritten programmatically only where an address, a path or an
interval must differ on a test machine.

The binaries come from tests/setup/observability.sh; a missing one fails the test (it never skips).
"""

from __future__ import annotations

import copy
import json
import re
import select
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from mlplatform.serving.processes import free_port

from processes import stop, wait_for_http

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
PROMETHEUS_DIR = MONITORING / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
BLACKBOX_YML = MONITORING / "blackbox" / "blackbox.yml"
DASHBOARDS_DIR = MONITORING / "grafana" / "dashboards-min"
PROVISIONING_DIR = MONITORING / "grafana" / "provisioning"
LOKI_YML = MONITORING / "loki" / "loki.yml"
ALLOY_CONFIG = MONITORING / "alloy" / "config.alloy"
SHIPPED_TARGETS_FILE = "/var/lib/mlplatform/serving/targets.json"
BLACKBOX_ADDRESS = "blackbox-exporter:9115"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `bash tests/setup/observability.sh` (make test does)")
    return path


def load_yaml(path: Path):
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} is missing")
    return yaml.safe_load(path.read_text())


# ---------------------------------------------------------------------------------------------------------- config


def _rewrite_hostport(hostport: str, addresses: dict[str, str], default: str) -> str:
    return addresses.get(hostport, default)


def _rewrite_target(target: str, addresses: dict[str, str], default: str) -> str:
    """``host:port`` or ``http://host:port/path``: the host:port part replaced through ``addresses``."""
    if "://" in target:
        parts = urllib.parse.urlsplit(target)
        return parts._replace(netloc=_rewrite_hostport(parts.netloc, addresses, default)).geturl()
    return _rewrite_hostport(target, addresses, default)


def loopback_prometheus_config(
    addresses: dict[str, str], unreachable: str, blackbox: str, targets_file: Path, interval: str = "1s"
) -> dict:
    """The shipped prometheus.yml for a loopback test: static targets through ``addresses`` (anything not listed
    goes to ``unreachable``, a port nothing listens on), the blackbox exporter at ``blackbox``, file_sd read from
    ``targets_file``, rules from the repository, every interval ``interval``. Nothing else changes."""
    config = copy.deepcopy(load_yaml(PROMETHEUS_YML))
    config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    config["rule_files"] = [str((PROMETHEUS_DIR / pattern).resolve()) for pattern in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for key in ("scrape_interval", "scrape_timeout"):
            if key in job:
                job[key] = interval
        for group in job.get("static_configs", []):
            group["targets"] = [_rewrite_target(t, addresses, unreachable) for t in group["targets"]]
        for sd in job.get("file_sd_configs", []):
            assert sd["files"] == [SHIPPED_TARGETS_FILE], sd
            sd["files"] = [str(targets_file)]
            sd["refresh_interval"] = interval
        for rule in job.get("relabel_configs", []):
            if rule.get("replacement") == BLACKBOX_ADDRESS:
                rule["replacement"] = blackbox
    return config


# ------------------------------------------------------------------------------------------------------- processes


@contextmanager
def blackbox_exporter(workdir: Path):
    """prometheus-blackbox-exporter with the shipped blackbox.yml; yields its host:port."""
    port = free_port()
    log = workdir / "blackbox.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                binary("prometheus-blackbox-exporter"),
                f"--config.file={BLACKBOX_YML}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", process, log, timeout_s=20)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


@contextmanager
def prometheus_server(config: dict, workdir: Path, port: int | None = None):
    """A real Prometheus with ``config`` on a loopback port; yields a client."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/-/ready", process, log, timeout_s=30)
        yield Prometheus(f"http://127.0.0.1:{port}", log)
    finally:
        stop(process)


class Prometheus:
    """Prometheus' HTTP API, with bounded waits."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            payload = json.loads(response.read())
        assert payload["status"] == "success", payload
        return payload["data"]

    def query(self, expr: str) -> list[dict]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]

    def metric_names(self) -> set[str]:
        return set(self.api("label/__name__/values"))

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def wait_until(self, what: str, check, timeout_s: float = 20, interval_s: float = 0.25):
        """Calls ``check()`` until it returns something truthy; fails with ``what`` and the last value otherwise."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(interval_s)
        raise AssertionError(
            f"{what}: not within {timeout_s} s (last: {last!r})\nprometheus log tail:\n{self.log.read_text()[-2000:]}"
        )

    def wait_for_value(self, expr: str, value: float, timeout_s: float = 20) -> list[dict]:
        def check():
            result = self.query(expr)
            return result if result and all(float(s["value"][1]) == value for s in result) else None

        return self.wait_until(f"{expr} == {value}", check, timeout_s)


# ---------------------------------------------------------------------------------------------------------- PromQL

_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are neither functions, keywords, labels nor strings)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _PROMQL_WORDS or word.startswith("$"):
            continue
        if text[max(0, match.start() - 1)] == "$":  # $model, $__rate_interval
            continue
        names.add(word)
    return names


def dashboards() -> dict[str, dict]:
    files = sorted(DASHBOARDS_DIR.glob("*.json"))
    if not files:
        pytest.fail(f"no dashboards in {DASHBOARDS_DIR.relative_to(REPO)}")
    return {f.name: json.loads(f.read_text()) for f in files}


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


def panel_queries(dashboard: dict) -> list[tuple[str, dict, dict]]:
    """(panel title, panel, target) for every query target of every panel."""
    return [(panel["title"], panel, target) for panel in all_panels(dashboard) for target in panel.get("targets", [])]


def target_datasource_uid(panel: dict, target: dict) -> str:
    return (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")


def expand_grafana_variables(expr: str, values: dict[str, str], rate_interval: str) -> str:
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", rate_interval)
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return expr


# ---------------------------------------------------------------------------------------------- mlplatform observe

EXPORTER_PREFIX = "mlplatform_"  # the platform exporter's metrics (test_model_quality_live.py runs them)
MODEL_QUALITY_DASHBOARD = "model-quality.json"


@contextmanager
def mlplatform_observe(environment: dict[str, str], workdir: Path, interval: str = "1s"):
    """``mlplatform observe --json`` on free ports; yields (the printed URLs, a Prometheus client, the process).
    The caller may stop the process itself; it is stopped here otherwise."""
    binary("prometheus"), binary("prometheus-blackbox-exporter")  # fail (never skip) with the set-up hint
    workdir.mkdir(parents=True, exist_ok=True)
    ports = ("--prometheus-port", "0", "--blackbox-port", "0", "--exporter-port", "0")
    stderr = workdir / "observe.stderr"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlplatform.cli.main", "observe", "--json", "--interval", interval, *ports],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
    try:
        line = _first_line(process, timeout_s=120)
        assert line, f"observe printed nothing (exit {process.poll()}):\n{stderr.read_text()[-3000:]}"
        urls = json.loads(line)
        prometheus_log = Path(environment["MLPLATFORM_HOME"]) / "observe" / "prometheus.log"
        yield urls, Prometheus(urls["prometheus_url"], prometheus_log), process
    finally:
        stop(process)


def _first_line(process: subprocess.Popen, timeout_s: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    return process.stdout.readline().decode() if ready else ""


def with_bool_comparison(expr: str) -> str:
    """An alert expression with its comparison made ``bool``: every series it compares, 0 or 1, instead of only the
    ones that fire, so a query proves the expression selects live series whether or not the alert fires."""
    return re.sub(r"(==|!=|>=|<=|>|<)(\s)", r"\1 bool\2", expr, count=1)


# ---------------------------------------------------------------------------------------------------- Grafana Alloy


def alloy_blocks(text: str, header: str) -> list[str]:
    """The bodies of every ``header { ... }`` block (e.g. ``rule``, ``discovery.relabel "containers"``), braces
    matched outside strings; comments (``//`` to the end of the line) removed first."""
    text = re.sub(r'("(?:[^"\\]|\\.)*")|//[^\n]*', lambda m: m.group(1) or "", text)
    bodies = []
    for match in re.finditer(re.escape(header) + r"\s*\{", text):
        depth, position, in_string = 1, match.end(), False
        while depth:
            char = text[position]
            if char == '"' and text[position - 1] != "\\":
                in_string = not in_string
            elif not in_string:
                depth += {"{": 1, "}": -1}.get(char, 0)
            position += 1
        bodies.append(text[match.end() : position - 1])
    return bodies


def alloy_attributes(body: str) -> dict:
    """``name = "string"``, ``name = ["a", "b"]`` and ``name = component.reference`` attributes of one block body
    (nested blocks not included): strings and lists of strings decoded, references as written."""
    flat = re.sub(r"\{[^{}]*\}", "", body) if "{" in body else body
    found = re.findall(r'^\s*(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[\w.]+)', flat, re.MULTILINE)
    return {name: _alloy_value(value) for name, value in found}


def _alloy_value(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def alloy_relabel_rules() -> list[dict]:
    """The ``rule`` blocks of ``discovery.relabel "containers"`` as Prometheus relabel_configs (same fields)."""
    if not ALLOY_CONFIG.exists():
        pytest.fail(f"{ALLOY_CONFIG.relative_to(REPO)} is missing")
    (relabel,) = alloy_blocks(ALLOY_CONFIG.read_text(), 'discovery.relabel "containers"')
    return [alloy_attributes(rule) for rule in alloy_blocks(relabel, "rule")]
