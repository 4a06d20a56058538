"""Prometheus configuration for ``mlplatform observe``: the shipped ``monitoring/prometheus/prometheus.yml``, kept
job for job, pointed at the local servers: the Blackbox exporter and Prometheus on loopback, the serving targets file
of this home (file_sd), the platform exporter, and the same rule files. Services of the compose stack that do not
run here (MLflow server, Dagster webserver, Airflow, MinIO, Loki, Grafana) are left out instead of reported down.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from mlplatform.settings import Settings

SHIPPED_TARGETS_FILE = "/var/lib/mlplatform/serving/targets.json"
SHIPPED_BLACKBOX = "blackbox-exporter:9115"
SHIPPED_EXPORTER = "mlplatform-exporter:9108"


class MonitoringFilesMissing(FileNotFoundError):
    """The monitoring/ folder (Prometheus config, rules, Blackbox modules) is not where the settings say."""


def monitoring_file(settings: Settings, relative: str) -> Path:
    path = settings.monitoring_dir / relative
    if not path.exists():
        raise MonitoringFilesMissing(
            f"{path} is missing: set MLPLATFORM_MONITORING_DIR to the repository's monitoring/ folder"
        )
    return path


def local_config(settings: Settings, prometheus: str, blackbox: str, exporter: str, interval: str) -> dict:
    """``prometheus``, ``blackbox``, ``exporter``: the loopback host:port of each server."""
    shipped_file = monitoring_file(settings, "prometheus/prometheus.yml")
    config = copy.deepcopy(yaml.safe_load(shipped_file.read_text()))
    config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    config["rule_files"] = [str(shipped_file.parent / pattern) for pattern in config.get("rule_files", [])]
    local = {
        "localhost:9090": prometheus,
        "prometheus:9090": prometheus,
        SHIPPED_EXPORTER: exporter,
        SHIPPED_BLACKBOX: blackbox,
    }
    targets_file = str(settings.home / "serving" / "targets.json")
    for job in config["scrape_configs"]:
        for key in ("scrape_interval", "scrape_timeout"):
            job.pop(key, None)
        job["static_configs"] = [
            {**group, "targets": [_local_target(t, local) for t in group["targets"]]}
            for group in job.get("static_configs", [])
            if all(_local_target(t, local) for t in group["targets"])
        ]
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [targets_file if f == SHIPPED_TARGETS_FILE else f for f in sd["files"]]
        for rule in job.get("relabel_configs", []):
            if rule.get("replacement") == SHIPPED_BLACKBOX:
                rule["replacement"] = blackbox
    config["scrape_configs"] = [
        job for job in config["scrape_configs"] if job["static_configs"] or job.get("file_sd_configs")
    ]
    for job in config["scrape_configs"]:
        if not job["static_configs"]:
            del job["static_configs"]
    return config


def _local_target(target: str, local: dict[str, str]) -> str:
    """``host:port`` or ``http://host:port/path`` with the host:port of a local server, or "" when none runs here."""
    scheme, _, rest = target.rpartition("://")
    hostport, slash, path = rest.partition("/")
    if hostport not in local:
        return ""
    return f"{scheme}://{local[hostport]}{slash}{path}" if scheme else local[hostport]
