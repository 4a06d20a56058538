"""The one Definitions of the code location: assets with their checks, jobs, schedules, sensors and resources.

Importing this module reads the settings and changes nothing: no environment writes, no folders, no files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import Definitions

from mlplatform.assets.candidate_model import candidate_model
from mlplatform.assets.jobs import JOBS, schedules
from mlplatform.assets.monitoring_report import monitoring_report
from mlplatform.assets.predictions import predictions
from mlplatform.assets.production_alias import production_alias
from mlplatform.assets.raw_dataset import raw_dataset
from mlplatform.resources.build import build_resources
from mlplatform.retraining import RetrainPolicy
from mlplatform.sensors.alias_sensor import alias_sensor
from mlplatform.sensors.retrain_sensor import retrain_sensor
from mlplatform.sensors.serving_job import serving_job
from mlplatform.settings import Settings


def build_definitions(
    settings: Settings, environ: Mapping[str, str] = os.environ, files_from_anywhere: bool = False
) -> Definitions:
    """The code location for ``settings`` (``environ``, ``files_from_anywhere``: see ``build_resources``)."""
    return Definitions(
        assets=[raw_dataset, candidate_model, production_alias, predictions, monitoring_report],
        jobs=[*JOBS, serving_job],
        schedules=schedules(settings.scheduler),
        sensors=[alias_sensor(settings.serve_poll_seconds), retrain_sensor(RetrainPolicy.from_settings(settings))],
        resources=build_resources(settings, environ, files_from_anywhere),
    )


defs = build_definitions(Settings())
