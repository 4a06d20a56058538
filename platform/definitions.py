"""The one Definitions of the code location: assets with their checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

from dagster import Definitions, EnvVar

from mlplatform.assets.candidate_model import candidate_model
from mlplatform.assets.jobs import JOBS, SCHEDULES
from mlplatform.assets.monitoring_report import monitoring_report
from mlplatform.assets.predictions import predictions
from mlplatform.assets.production_alias import production_alias
from mlplatform.assets.raw_dataset import raw_dataset
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.sensors.alias_sensor import alias_sensor
from mlplatform.sensors.serving_job import serving_job
from mlplatform.settings import apply_embedded_defaults

apply_embedded_defaults()

defs = Definitions(
    assets=[raw_dataset, candidate_model, production_alias, predictions, monitoring_report],
    jobs=[*JOBS, serving_job],
    schedules=SCHEDULES,
    sensors=[alias_sensor],
    resources={
        "app_db": AppDatabase(uri=EnvVar("APP_DB_URI")),
        "mlflow": MlflowTracking(
            tracking_uri=EnvVar("MLFLOW_TRACKING_URI"),
            experiment_name=EnvVar("MLFLOW_EXPERIMENT_NAME"),
            model_name_prefix=EnvVar("MLFLOW_MODEL_NAME"),
            production_alias=EnvVar("MLFLOW_MODEL_ALIAS"),
            candidate_alias=EnvVar("MLFLOW_CANDIDATE_ALIAS"),
            shadow_alias=EnvVar("MLFLOW_SHADOW_ALIAS"),
            artifact_root=EnvVar("MLPLATFORM_ARTIFACT_ROOT"),
        ),
        "serving": ServingResource(
            home=EnvVar("MLPLATFORM_HOME"),
            backend=EnvVar("MLPLATFORM_SERVING_BACKEND"),
            aliases=EnvVar("MLFLOW_SERVE_ALIASES"),
            docker_image=EnvVar("MLPLATFORM_IMAGE"),
            docker_network=EnvVar("MLFLOW_SERVE_NETWORK"),
        ),
    },
)
