"""Environment -> settings. Every variable keeps the old stack's name; unset means the embedded default.

The embedded default lives under ``MLPLATFORM_HOME`` (default ``./.mlplatform``): SQLite app-db, MLflow with a
SQLite backend store and a local artifact folder, and ``DAGSTER_HOME`` with SQLite storage. ``apply_embedded_defaults``
writes the resolved values back into ``os.environ`` so that Dagster's ``EnvVar``s, child processes (run workers,
``mlflow models serve``) and the Dagster UI all see one consistent configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlplatform.dagster_home import ensure_instance_config

DEFAULT_HOME = ".mlplatform"


@dataclass(frozen=True)
class Settings:
    home: Path
    app_db_uri: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    experiment_name: str
    model_name_prefix: str
    production_alias: str
    candidate_alias: str
    shadow_alias: str
    serve_aliases: tuple[str, ...]


def _embedded_values(home: Path) -> dict[str, str]:
    return {
        "APP_DB_URI": f"sqlite:///{home / 'app.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLPLATFORM_ARTIFACT_ROOT": str(home / "mlartifacts"),
        "DAGSTER_HOME": str(home / "dagster"),
        "MLFLOW_EXPERIMENT_NAME": "mlplatform",
        "MLFLOW_MODEL_NAME": "mlplatform",
        "MLFLOW_MODEL_ALIAS": "Production",
        "MLFLOW_CANDIDATE_ALIAS": "challenger",
        "MLFLOW_SHADOW_ALIAS": "",  # e.g. "challenger": shadow inference beside production
        "MLFLOW_SERVE_ALIASES": "Production",
        "MLFLOW_SERVE_POLL_SECONDS": "5",
        "MLPLATFORM_SERVING_BACKEND": "local",  # "docker" in the compose stack
        "MLPLATFORM_IMAGE": "",  # the platform image (Docker backend: gateways and scoring servers)
        "MLFLOW_SERVE_NETWORK": "",  # Docker network of the serving containers
        # MLflow refuses to deserialize scikit-learn models (skops included) when this is false; the platform
        # loads only its own registry's models, so it states the default explicitly rather than inheriting it.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # progress bars in run logs and CLI output are noise
    }


def platform_variables() -> tuple[str, ...]:
    """Every variable the platform reads or fills in (for tools that need a clean environment)."""
    return ("MLPLATFORM_HOME", "DAGSTER_POSTGRES_URL", "MLPLATFORM_DAGSTER_SCHEDULES", *_embedded_values(Path()))


_filled: dict[str, str] = {}  # what this process filled in; a value the user set (anything else) always wins


def apply_embedded_defaults(home: str | os.PathLike | None = None) -> Settings:
    """Resolve ``MLPLATFORM_HOME`` (``home`` wins) and fill every unset variable with its embedded default."""
    resolved = Path(home or os.environ.get("MLPLATFORM_HOME") or DEFAULT_HOME).expanduser().resolve()
    os.environ["MLPLATFORM_HOME"] = str(resolved)
    for name, value in _embedded_values(resolved).items():
        if name not in os.environ or os.environ[name] == _filled.get(name):
            os.environ[name] = _filled[name] = value
    resolved.mkdir(parents=True, exist_ok=True)
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    ensure_instance_config(dagster_home)
    return current_settings()


def current_settings() -> Settings:
    env = os.environ
    return Settings(
        home=Path(env["MLPLATFORM_HOME"]),
        app_db_uri=env["APP_DB_URI"],
        mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"],
        mlflow_artifact_root=env["MLPLATFORM_ARTIFACT_ROOT"],
        experiment_name=env["MLFLOW_EXPERIMENT_NAME"],
        model_name_prefix=env["MLFLOW_MODEL_NAME"],
        production_alias=env["MLFLOW_MODEL_ALIAS"],
        candidate_alias=env["MLFLOW_CANDIDATE_ALIAS"],
        shadow_alias=env["MLFLOW_SHADOW_ALIAS"],
        serve_aliases=tuple(a.strip() for a in env["MLFLOW_SERVE_ALIASES"].split(",") if a.strip()),
    )
