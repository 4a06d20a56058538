"""promtool on the shipped Prometheus files: the config and rules are valid, and the rules' unit tests pass
(ServiceDown fires when probe_success is 0 for 2 minutes and stays silent while it is 1)."""

from __future__ import annotations

import re
import subprocess

import yaml

from observability_stack import PROMETHEUS_DIR, PROMETHEUS_YML, RULES_DIR, binary, loopback_prometheus_config


def promtool(*args: str, cwd=PROMETHEUS_DIR) -> subprocess.CompletedProcess:
    return subprocess.run([binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def rule_files() -> list[str]:
    files = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in RULES_DIR.glob("*.yml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def test_check_config_of_the_shipped_file():
    # The file_sd path exists only in the compose stack: promtool warns about it and still accepts the config.
    result = promtool("check", "config", PROMETHEUS_YML.name)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is valid prometheus config file syntax" in output
    # rule_files is relative to the config: promtool found and checked the rules through it
    for name in rule_files():
        assert f"Checking {name}" in output, output
    assert re.search(r"SUCCESS: [1-9]\d* rules found", output), output


def test_check_config_with_existing_file_sd(tmp_path):
    """The same config with its file_sd path pointing at a real (empty) targets file: no warning at all."""
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    config = loopback_prometheus_config({}, "127.0.0.1:1", "127.0.0.1:2", targets, interval="15s")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = promtool("check", "config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_check_rules():
    result = promtool("check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests():
    tests = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in monitoring/prometheus/tests"
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_cover_service_down_in_both_directions():
    """The rules' unit tests must prove ServiceDown fires on probe_success 0 and never on 1 (the old stack's
    alert was inverted): both cases are present in the test file."""
    suites = [yaml.safe_load(p.read_text()) for p in (PROMETHEUS_DIR / "tests").glob("*.yml")]
    fires, silent = False, False
    for suite in suites:
        for case in suite["tests"]:
            values = " ".join(s["values"] for s in case["input_series"] if s["series"].startswith("probe_success"))
            for check in case.get("alert_rule_test", []):
                if check["alertname"] != "ServiceDown":
                    continue
                if check["exp_alerts"] and "0" in values:
                    fires = True
                if not check["exp_alerts"] and values and set(values.replace("x", " ").split()) <= {"1", "10"}:
                    silent = True
    assert fires and silent, (fires, silent)


def test_inverted_service_down_would_fail_the_unit_tests(tmp_path):
    """Mutation check: the same unit tests against an inverted ServiceDown (== 1) fail."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULES_DIR.glob("*.yml"):
        text = path.read_text()
        inverted = text.replace('probe_success{job="blackbox-http"} == 0', 'probe_success{job="blackbox-http"} == 1')
        (tmp_path / "rules" / path.name).write_text(inverted)
    assert any("== 1" in p.read_text() for p in (tmp_path / "rules").glob("*.yml")), "ServiceDown expression changed?"
    for path in (PROMETHEUS_DIR / "tests").glob("*.yml"):
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    result = promtool("test", "rules", *(f"tests/{p.name}" for p in (tmp_path / "tests").glob("*.yml")), cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "alertname: ServiceDown" in result.stdout + result.stderr
