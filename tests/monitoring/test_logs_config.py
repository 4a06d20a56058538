"""Loki and Grafana Alloy (no binaries here: Docker images only): the configs parse, data is kept on durable paths,
and Alloy's relabel rules, run through a real Prometheus relabel engine (the same library Alloy uses) on Docker
discovery labels of a compose service, a gateway and a scoring container, gives the labels the dashboards query."""

from __future__ import annotations

import json

from observability_stack import (
    ALLOY_CONFIG,
    LOKI_YML,
    alloy_attributes,
    alloy_blocks,
    alloy_relabel_rules,
    load_yaml,
    prometheus_server,
)

DURABLE_ROOTS = ("/loki/", "/var/lib/")


def test_loki_keeps_data_on_durable_paths():
    loki = load_yaml(LOKI_YML)
    assert loki["common"]["path_prefix"] == "/loki"
    filesystem = loki["common"]["storage"]["filesystem"]
    paths = [
        filesystem["chunks_directory"],
        filesystem["rules_directory"],
        loki["storage_config"]["tsdb_shipper"]["active_index_directory"],
        loki["storage_config"]["tsdb_shipper"]["cache_location"],
        loki["ingester"]["wal"]["dir"],
        loki["compactor"]["working_directory"],
    ]
    for path in paths:
        assert path.startswith("/loki/"), path
    (schema,) = loki["schema_config"]["configs"]
    assert schema["store"] == "tsdb" and schema["object_store"] == "filesystem" and schema["schema"] == "v13"
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["compactor"]["delete_request_store"] == "filesystem"
    assert loki["limits_config"]["retention_period"].endswith("h")
    assert loki["server"]["http_listen_port"] == 3100


def test_alloy_ships_every_container_to_loki():
    text = ALLOY_CONFIG.read_text()
    (discovery,) = [alloy_attributes(b) for b in alloy_blocks(text, 'discovery.docker "containers"')]
    assert discovery["host"] == "unix:///var/run/docker.sock"
    (source,) = [alloy_attributes(b) for b in alloy_blocks(text, 'loki.source.docker "containers"')]
    assert source["targets"] == "discovery.docker.containers.targets"  # every container: no filter
    assert source["relabel_rules"] == "discovery.relabel.containers.rules"
    assert source["forward_to"] == "[loki.process.platform_json.receiver]"
    (process,) = alloy_blocks(text, 'loki.process "platform_json"')
    assert "loki.write.loki.receiver" in process
    assert [alloy_attributes(b)["url"] for b in alloy_blocks(text, "endpoint")] == ["http://loki:3100/loki/api/v1/push"]
    assert "--storage.path=/var/lib/alloy/data" in text  # positions on the durable volume
    assert not alloy_blocks(text, "filter")  # no container filter
    # the old stack dropped every container outside its compose project, serving containers included
    rules = alloy_relabel_rules()
    for rule in rules:
        assert rule.get("action", "replace") not in ("keep", "drop"), rule
    assert {"service", "container", "project", "model", "alias", "version", "role"} <= {
        r["target_label"] for r in rules
    }


def test_alloy_promotes_the_platform_json_event_and_the_answering_version():
    """The platform's JSON lines (mlplatform.logs) get an ``event`` label; a gateway line's version (the version
    that answered) becomes the version label the gateway container cannot carry."""
    text = ALLOY_CONFIG.read_text()
    (json_stage,) = alloy_blocks(text, "stage.json")
    assert 'event = ""' in json_stage and 'line_version = "version"' in json_stage
    label_stages = alloy_blocks(text, "stage.labels")
    assert any('event = ""' in stage for stage in label_stages)
    (gateway_only,) = alloy_blocks(text, "stage.match")
    assert '{role=\\"gateway\\"}' in gateway_only and 'version = "line_version"' in gateway_only


COMPOSE_MLFLOW = {
    "__meta_docker_container_name": "/mlplatform-mlflow-1",
    "__meta_docker_container_label_com_docker_compose_service": "mlflow",
    "__meta_docker_container_label_com_docker_compose_project": "mlplatform",
    "__meta_docker_container_log_stream": "stderr",
}
GATEWAY = {
    "__meta_docker_container_name": "/mlflow-serve-iris_classifier_iris-production-1a2b3c4d",
    "__meta_docker_container_label_mlflow_serve": "true",
    "__meta_docker_container_label_mlflow_model": "iris_classifier_iris",
    "__meta_docker_container_label_mlflow_alias": "Production",
    "__meta_docker_container_label_mlflow_version": "",
    "__meta_docker_container_label_mlflow_port": "8000",
    "__meta_docker_container_label_mlplatform_role": "gateway",
    "__meta_docker_container_log_stream": "stdout",
}
SCORING = {
    **GATEWAY,
    "__meta_docker_container_name": "/mlflow-serve-iris_classifier_iris-production-1a2b3c4d-v3",
    "__meta_docker_container_label_mlflow_version": "3",
    "__meta_docker_container_label_mlflow_port": "8080",
    "__meta_docker_container_label_mlplatform_role": "scoring",
}


def test_alloy_relabeling_gives_serving_containers_their_labels(tmp_path):
    discovered = tmp_path / "containers.json"
    containers = [COMPOSE_MLFLOW, GATEWAY, SCORING]
    # one unreachable address per container (never scraped within the test: scrape interval 1h)
    discovered.write_text(
        json.dumps([{"targets": [f"127.0.0.1:{i + 1}"], "labels": labels} for i, labels in enumerate(containers)])
    )
    config = {
        "global": {"scrape_interval": "1h", "scrape_timeout": "10s"},
        "scrape_configs": [
            {
                "job_name": "alloy-relabel",
                "file_sd_configs": [{"files": [str(discovered)]}],
                "relabel_configs": alloy_relabel_rules(),
            }
        ],
    }
    with prometheus_server(config, tmp_path / "prometheus") as prometheus:
        active = prometheus.wait_until(
            "three relabelled targets", lambda: (t := prometheus.api("targets")["activeTargets"]) and len(t) == 3 and t
        )
    by_container = {t["labels"]["container"]: t["labels"] for t in active}
    drop = {"job", "instance"}  # Prometheus' own; Alloy sets neither
    got = {name: {k: v for k, v in labels.items() if k not in drop} for name, labels in by_container.items()}
    assert got == {
        "mlplatform-mlflow-1": {
            "container": "mlplatform-mlflow-1",
            "service": "mlflow",
            "project": "mlplatform",
            "stream": "stderr",
        },
        "mlflow-serve-iris_classifier_iris-production-1a2b3c4d": {
            "container": "mlflow-serve-iris_classifier_iris-production-1a2b3c4d",
            "service": "mlflow-serve",
            "project": "mlplatform",
            "model": "iris_classifier_iris",
            "alias": "Production",
            "role": "gateway",
            "stream": "stdout",
        },
        "mlflow-serve-iris_classifier_iris-production-1a2b3c4d-v3": {
            "container": "mlflow-serve-iris_classifier_iris-production-1a2b3c4d-v3",
            "service": "mlflow-serve",
            "project": "mlplatform",
            "model": "iris_classifier_iris",
            "alias": "Production",
            "version": "3",
            "role": "scoring",
            "stream": "stdout",
        },
    }
