"""Settings -> the resources of the code location: the one place that wires configuration to external systems.

Inside Dagster's processes, a value the environment holds becomes an ``EnvVar`` (the Dagster UI shows the variable's
name, never a secret, and run workers read it themselves); a value the settings filled in (the embedded default) is
passed as it is. Code that uses the resources directly (the CLI, benchmarks) passes ``environ={}``: concrete values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dagster import EnvVar

from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.dataset_files import DatasetFiles
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import DockerServing, LocalServing, ServingResource
from mlplatform.settings import Settings


def build_resources(
    settings: Settings, environ: Mapping[str, str] = os.environ, files_from_anywhere: bool = False
) -> dict:
    """``files_from_anywhere``: dataset files may come from anywhere this process can read (the CLI's own user);
    otherwise only from ``MLPLATFORM_DATA_DIRS`` (runs launched from Dagster's UI or Airflow)."""

    def value(name: str, resolved: str) -> str | EnvVar:
        return EnvVar(name) if environ.get(name) == resolved else resolved

    return {
        "app_db": AppDatabase(uri=value("APP_DB_URI", settings.app_db_uri)),
        "dataset_files": DatasetFiles(
            data_dirs=None if files_from_anywhere else [str(folder) for folder in settings.data_dirs]
        ),
        "mlflow": MlflowTracking(
            tracking_uri=value("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
            experiment_name=settings.experiment_name,
            model_name_prefix=settings.model_name_prefix,
            production_alias=settings.production_alias,
            candidate_alias=settings.candidate_alias,
            shadow_alias=settings.shadow_alias,
            artifact_root=settings.artifact_root,
        ),
        "serving": serving_resource(settings, value("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)),
    }


def serving_resource(settings: Settings, tracking_uri: str | EnvVar) -> ServingResource:
    common: dict[str, Any] = {
        "home": str(settings.home),
        "aliases": ",".join(settings.serve_aliases),
        "production_alias": settings.production_alias,
        "tracking_uri": tracking_uri,
        "models": ",".join(settings.serve_models),
        "max_body_mb": settings.serve_max_body_mb,
        "max_concurrency": settings.serve_max_concurrency,
        "timeout_s": settings.serve_timeout_s,
        "extra_columns": settings.serve_extra_columns,
    }
    if settings.serving_backend == "docker":
        return DockerServing(**common, image=settings.image, network=settings.serve_network)
    return LocalServing(**common)
