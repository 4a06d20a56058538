"""The compose stack checked without running it: the Compose specification, variables substituted, and the
rules the old stack broke (published ports, default secrets, unpinned images, data outside volumes, the Docker
socket everywhere). Grafana, Loki and Alloy cannot run here (no image can be pulled, no package builds them), so
their wiring is checked here: every host the Prometheus, Alloy and Grafana configuration names is a service."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from stack_compose import COMPOSE_FILE, DEPLOY, ROOT, compose_command, docker_compose, resolved_config, write_env

MONITORING = ROOT / "monitoring"
ONE_SHOT = {"airflow-init"}
SOCKET = "/var/run/docker.sock"
# Who may mount the Docker socket, and why (the compose file says it beside each mount).
SOCKET_USERS = {
    "dagster-daemon": "rw",  # launches each run in its own container, run monitoring
    "dagster-webserver": "rw",  # terminating a run stops its container
    "alloy": "ro",  # discovers containers and reads their logs
}
# Where each stateful service keeps its data.
STATEFUL = {
    "postgres": "/var/lib/postgresql/data",
    "seaweedfs": "/data",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
    "loki": "/loki",
    "alloy": "/var/lib/alloy",
    "airflow-webserver": "/opt/airflow/state",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY")


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    return write_env(tmp_path_factory.mktemp("stack") / ".env")


@pytest.fixture(scope="module")
def config(env_file) -> dict:
    return resolved_config(env_file, "observability")


def test_the_compose_file_follows_the_compose_specification():
    checker = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "check-jsonschema"
    assert checker.exists(), "check-jsonschema is missing: install the test extra (make test does)"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_secret_is_required_and_none_has_a_default(tmp_path):
    text = COMPOSE_FILE.read_text()
    uses = re.findall(r"\$\{([A-Z0-9_]+)(:?[-?+]?)([^}]*)\}", text)
    secrets = {name for name, _, _ in uses if SECRET_NAME.search(name)}
    assert {"POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AIRFLOW_FERNET_KEY", "GRAFANA_ADMIN_PASSWORD"} <= secrets
    for name, operator, _ in uses:
        if SECRET_NAME.search(name):
            assert operator == ":?", f"${{{name}}} must be ${{{name}:?...}}: no default secret"
    example = dict(
        line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines() if "=" in line[:80]
    )
    for name in secrets:
        assert example.get(name, "").startswith("<generate"), f"{name} in .env.example must be a placeholder"
    # Without deploy/.env the stack refuses to start, naming what to run.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(
        [*compose_command(empty, "mlplatform-config"), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "run make stack-secrets" in result.stderr, result.stderr


def test_stack_secrets_are_random_and_private(tmp_path):
    first, second = write_env(tmp_path / "a.env"), write_env(tmp_path / "b.env")
    assert first.stat().st_mode & 0o077 == 0
    a, b = (dict(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line) for f in (first, second))
    for name in (n for n in a if SECRET_NAME.search(n)):
        assert len(a[name]) >= 32 and a[name] != b[name] and "<" not in a[name], name
    assert a["DOCKER_GID"].isdigit()


def test_published_ports_are_on_loopback_only_and_stores_are_not_published(config):
    published = {}
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            text = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
            assert text.startswith("127.0.0.1:"), f"{name} publishes {text} on every interface"
            published[name] = text
    assert set(published) == {"mlflow", "dagster-webserver", "airflow-webserver", "prometheus", "grafana"}
    for store in ("postgres", "seaweedfs", "loki", "blackbox-exporter", "dagster-code", "alloy"):
        assert store not in published


def test_every_image_is_pinned(config):
    for name, service in config["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


def test_every_stateful_service_keeps_its_data_on_a_named_volume(config):
    volumes = set(config["volumes"])
    for name, path in STATEFUL.items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in config["services"][name].get("volumes", [])}
        assert mounts.get(path) in volumes, f"{name} keeps {path} outside a named volume: {mounts}"


def test_the_docker_socket_is_mounted_only_where_containers_are_launched(config):
    users = {}
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if SOCKET in (source, target):
                users[name] = mode[0] if mode else "rw"
    assert users == SOCKET_USERS
    text = COMPOSE_FILE.read_text().splitlines()
    for number, line in enumerate(text):
        if "docker.sock:" in line:
            assert "Docker socket" in text[number - 1], f"line {number + 1}: say why beside the socket mount"


def test_long_running_services_have_healthchecks_restart_policies_and_wait_on_health(config):
    services = config["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
        if name in ONE_SHOT:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"
    assert "sleep" not in COMPOSE_FILE.read_text()


def _hosts(urls) -> set[str]:
    return {urlparse(u if "://" in u else f"http://{u}").hostname for u in urls}


def test_every_service_the_monitoring_config_names_is_in_the_stack(config):
    names = set(config["services"])
    for service in config["services"].values():
        for network in (service.get("networks") or {}).values():
            names |= set((network or {}).get("aliases", []))
    prometheus = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    targets, replacements = [], []
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets += static["targets"]
        replacements += [r["replacement"] for r in job.get("relabel_configs", []) if ":" in r.get("replacement", "")]
    hosts = _hosts(targets) | _hosts(r for r in replacements if "$" not in r)
    hosts.discard("localhost")
    alloy = (MONITORING / "alloy" / "config.alloy").read_text()
    hosts |= _hosts(re.findall(r'url\s*=\s*"([^"]+)"', alloy))
    provisioning = MONITORING / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    hosts |= _hosts(d["url"] for d in datasources["datasources"])
    assert {"mlflow", "loki", "prometheus", "blackbox-exporter", "mlplatform-exporter"} <= hosts
    assert hosts <= names, f"named by the monitoring config but not in the stack: {sorted(hosts - names)}"
    # The mounts point at the files that exist, and the Grafana provisioning parses.
    for service in config["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/") and source != SOCKET:
                assert Path(source).exists(), source
    uids = {d["uid"] for d in datasources["datasources"]}
    for dashboard in (MONITORING / "grafana" / "dashboards-min").glob("*.json"):
        used = set(re.findall(r'"uid":\s*"(prometheus|loki)"', dashboard.read_text()))
        json.loads(dashboard.read_text())
        assert used <= uids, dashboard.name
    assert yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]


def test_runs_get_what_they_read_and_only_serving_runs_get_the_socket(tmp_path):
    """The run launcher of deploy/dagster/dagster.yaml: the platform variables and the serving state volume
    (read-only) go to every run container, the Docker socket (and that volume read-write) to serving_job runs alone.
    test_run_containers.py mounts them in real containers."""
    from dagster import DagsterRun

    from mlplatform.serving.docker_backend import SOCKET, ServingAwareDockerRunLauncher

    instance = yaml.safe_load((DEPLOY / "dagster" / "dagster.yaml").read_text())
    launcher_config = instance["run_launcher"]
    assert launcher_config["class"] == ServingAwareDockerRunLauncher.__name__
    passed = set(launcher_config["config"]["env_vars"])
    needed = {"MLPLATFORM_SERVING_BACKEND", "MLPLATFORM_IMAGE", "MLFLOW_SERVE_NETWORK", "APP_DB_URI"}
    assert needed | {"MLFLOW_TRACKING_URI", "DAGSTER_POSTGRES_URL"} <= passed
    compose_env = yaml.safe_load(COMPOSE_FILE.read_text())["x-platform-env"]
    assert passed <= set(compose_env), "every variable passed to runs is set in the daemon's environment"
    assert Path(SOCKET).exists(), "the Docker socket is missing: run `bash tests/setup/docker.sh`"
    launcher = ServingAwareDockerRunLauncher(
        image="mlplatform/platform:0.1.0",
        network="mlplatform",
        env_vars=launcher_config["config"]["env_vars"],
        container_kwargs=launcher_config["config"]["container_kwargs"],
    )
    training = launcher.get_container_context(DagsterRun(job_name="training_job", run_id="a" * 36))
    serving = launcher.get_container_context(DagsterRun(job_name="serving_job", run_id="b" * 36))
    assert SOCKET not in str(training.container_kwargs) and "group_add" not in training.container_kwargs
    assert serving.container_kwargs["volumes"][SOCKET]["bind"] == SOCKET
    state = {"bind": "/var/lib/mlplatform/serving", "mode": "rw"}
    assert serving.container_kwargs["volumes"]["mlplatform-serving"] == state
    assert "mlplatform-serving:/var/lib/mlplatform/serving:ro" in training.container_kwargs["volumes"]
    assert serving.container_kwargs["group_add"] == [str(Path(SOCKET).stat().st_gid)]
    assert "mlplatform-data" in serving.container_kwargs["volumes"] and "mlplatform-data" in str(training)
    assert serving.networks == ["mlplatform"] and set(serving.env_vars) == passed


def test_docker_compose_is_installed():
    """The offline checks above need docker-compose (tests/setup/docker.sh); say so plainly when it is missing."""
    assert Path(docker_compose()).exists()
