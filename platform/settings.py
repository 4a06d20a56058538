"""Environment -> one typed settings object. Every variable keeps the old stack's name; unset means the embedded
default under ``MLPLATFORM_HOME`` (default ``./.mlplatform``): SQLite app-db, MLflow with a SQLite store and a local
artifact folder, and ``DAGSTER_HOME`` with SQLite storage.

Reading the settings changes nothing: no environment writes, no folders, no files. Whatever needs the home on disk
prepares it when it runs (``mlplatform.dagster_home.prepare``), and child processes get ``child_environment()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOME = ".mlplatform"
REPOSITORY_MONITORING = Path(__file__).resolve().parents[1] / "monitoring"  # exists in a checkout, not in a wheel


def parse_aliases(value: str | tuple | list) -> tuple[str, ...]:
    """``"Production, Test"`` -> ``("Production", "Test")``: comma-separated, exact case, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def _variable(name: str, *, default, description: str):
    return Field(default=default, validation_alias=name, description=f"{name}: {description}")


class Settings(BaseSettings):
    """The platform's configuration: ``Settings()`` reads the environment; ``Settings.load(home)`` sets the home."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")  # fields are read by their variable names only

    home: Path = _variable("MLPLATFORM_HOME", default=Path(DEFAULT_HOME), description="the embedded default's folder")
    app_db_uri: str = _variable("APP_DB_URI", default="", description="SQLAlchemy URL of app-db")
    mlflow_tracking_uri: str = _variable("MLFLOW_TRACKING_URI", default="", description="tracking server or store")
    artifact_root: str = _variable("MLPLATFORM_ARTIFACT_ROOT", default="", description="artifacts of a local store")
    dagster_home: Path = _variable("DAGSTER_HOME", default=Path(""), description="Dagster's instance folder")
    dagster_postgres_url: str = _variable("DAGSTER_POSTGRES_URL", default="", description="Dagster's storage")
    experiment_name: str = _variable("MLFLOW_EXPERIMENT_NAME", default="mlplatform", description="MLflow experiment")
    model_name_prefix: str = _variable(
        "MLFLOW_MODEL_NAME", default="mlplatform", description="registered models are <prefix>_<dataset>"
    )
    production_alias: str = _variable(
        "MLFLOW_MODEL_ALIAS", default="Production", description="the alias batch inference and serving use"
    )
    candidate_alias: str = _variable(
        "MLFLOW_CANDIDATE_ALIAS", default="challenger", description="given to every newly trained best model"
    )
    shadow_alias: str = _variable(
        "MLFLOW_SHADOW_ALIAS", default="", description="predicts beside production in batch inference, role 'shadow'"
    )
    serve_aliases: Annotated[tuple[str, ...], NoDecode] = _variable(
        "MLFLOW_SERVE_ALIASES", default=("Production",), description="aliases served, comma-separated, exact case"
    )
    serve_poll_seconds: int = _variable(
        "MLFLOW_SERVE_POLL_SECONDS", default=5, description="how often the alias sensor reads the registry"
    )
    serving_backend: Literal["local", "docker"] = _variable(
        "MLPLATFORM_SERVING_BACKEND", default="local", description="'local' processes or 'docker' containers"
    )
    image: str = _variable("MLPLATFORM_IMAGE", default="", description="the platform image (Docker backend)")
    serve_network: str = _variable(
        "MLFLOW_SERVE_NETWORK", default="", description="Docker network of the serving containers"
    )
    serve_models: Annotated[tuple[str, ...], NoDecode] = _variable(
        "MLPLATFORM_SERVE_MODELS",
        default=(),
        description="registered models the platform serves, comma-separated glob patterns (default <prefix>_*): "
        "a model someone else registered is never served, whatever alias it holds",
    )
    serve_max_body_mb: int = _variable(
        "MLPLATFORM_SERVE_MAX_BODY_MB", default=32, description="largest request body a gateway accepts (413 beyond)"
    )
    serve_max_concurrency: int = _variable(
        "MLPLATFORM_SERVE_MAX_CONCURRENCY", default=64, description="requests a gateway forwards at once (503 beyond)"
    )
    serve_timeout_s: float = _variable(
        "MLPLATFORM_SERVE_TIMEOUT_S", default=30.0, description="how long a gateway waits for a scoring server's answer"
    )
    serve_extra_columns: Literal["reject", "drop"] = _variable(
        "MLPLATFORM_SERVE_EXTRA_COLUMNS",
        default="reject",
        description="a request column the model does not take: 'reject' (400 naming it) or 'drop' (MLflow's way)",
    )
    data_dirs: Annotated[tuple[Path, ...], NoDecode] = _variable(
        "MLPLATFORM_DATA_DIRS",
        default=(),
        description="folders dataset files may be read from by Dagster runs and Airflow (default <home>/data); "
        "the CLI reads whatever its user can",
    )
    scheduler: Literal["dagster", "airflow"] = _variable(
        "MLPLATFORM_SCHEDULER",
        default="dagster",
        description="who runs the four jobs on their schedules; the other side only triggers on demand",
    )
    exporter_cache_seconds: float = _variable(
        "MLPLATFORM_EXPORTER_CACHE_SECONDS", default=30.0, description="how long the exporter reuses a store read"
    )
    monitoring_dir: Path = _variable(
        "MLPLATFORM_MONITORING_DIR", default=Path(""), description="the monitoring/ folder (Prometheus rules)"
    )
    retrain_on_new_data: bool = _variable(
        "MLPLATFORM_RETRAIN_ON_NEW_DATA", default=True, description="retrain when a dataset gets a new version"
    )
    retrain_on_drift: bool = _variable(
        "MLPLATFORM_RETRAIN_ON_DRIFT", default=True, description="retrain when monitoring finds drift in new data"
    )
    retrain_on_quality: bool = _variable(
        "MLPLATFORM_RETRAIN_ON_QUALITY", default=True, description="retrain when production quality drops on new data"
    )
    retrain_drift_min_features: Annotated[int, Field(ge=1)] = _variable(
        "MLPLATFORM_RETRAIN_DRIFT_MIN_FEATURES", default=1, description="drifted features that make a drift finding"
    )
    retrain_cooldown_minutes: Annotated[float, Field(ge=0)] = _variable(
        "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES", default=60.0, description="least time between retrainings of a dataset"
    )
    retrain_daily_max: Annotated[int, Field(ge=1)] = _variable(
        "MLPLATFORM_RETRAIN_DAILY_MAX", default=12, description="automatic retrainings in any 24 hours, all datasets"
    )

    @classmethod
    def load(cls, home: str | Path | None = None) -> Settings:
        """From this process's environment, with ``home`` (when given) as ``MLPLATFORM_HOME``."""
        return cls(MLPLATFORM_HOME=home) if home else cls()  # type: ignore[call-arg]  # by variable name

    @classmethod
    def from_mapping(cls, environ: Mapping[str, str]) -> Settings:
        """From ``environ`` alone, not this process's environment: a child's or a test's configuration."""
        given = {name: value for name, value in environ.items() if name in platform_variables()}
        # Every variable left out is given its default here: pydantic-settings would read it from this process's
        # environment otherwise (where, say, ``mlflow.set_tracking_uri`` puts MLFLOW_TRACKING_URI).
        defaults = {str(field.validation_alias): field.get_default() for field in cls.model_fields.values()}
        return cls.model_validate({**defaults, **given})

    @field_validator("serve_aliases", "serve_models", mode="before")
    @classmethod
    def _split_names(cls, value):
        return parse_aliases(value)

    @field_validator("data_dirs", mode="before")
    @classmethod
    def _split_paths(cls, value):
        return tuple(Path(p) for p in parse_aliases(value))

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        home, unset = self.home.expanduser().resolve(), Path("")
        filled = {
            "home": home,
            "app_db_uri": self.app_db_uri or f"sqlite:///{home / 'app.db'}",
            "mlflow_tracking_uri": self.mlflow_tracking_uri or f"sqlite:///{home / 'mlflow.db'}",
            "artifact_root": self.artifact_root or str(home / "mlartifacts"),
            "dagster_home": self.dagster_home.expanduser().resolve()
            if self.dagster_home != unset
            else home / "dagster",
            "monitoring_dir": self.monitoring_dir.expanduser().resolve()
            if self.monitoring_dir != unset
            else REPOSITORY_MONITORING,
            # dagster-postgres sends psycopg2-style parameters, and SQLAlchemy 2.1 maps a bare postgresql:// to
            # psycopg 3: name the driver.
            "serve_models": self.serve_models or (f"{self.model_name_prefix}_*",),
            "data_dirs": tuple(p.expanduser().resolve() for p in self.data_dirs) or (home / "data",),
            "dagster_postgres_url": re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", self.dagster_postgres_url),
        }
        for name, value in filled.items():
            object.__setattr__(self, name, value)
        return self

    def child_environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (e.g. a minimal PATH/HOME) plus every platform variable, resolved: what a child process of the
        platform (``dagster dev``, a run worker) needs to see the same configuration as this process."""
        values = {
            "MLPLATFORM_HOME": str(self.home),
            "APP_DB_URI": self.app_db_uri,
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "MLPLATFORM_ARTIFACT_ROOT": self.artifact_root,
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_POSTGRES_URL": self.dagster_postgres_url,
            "MLFLOW_EXPERIMENT_NAME": self.experiment_name,
            "MLFLOW_MODEL_NAME": self.model_name_prefix,
            "MLFLOW_MODEL_ALIAS": self.production_alias,
            "MLFLOW_CANDIDATE_ALIAS": self.candidate_alias,
            "MLFLOW_SHADOW_ALIAS": self.shadow_alias,
            "MLFLOW_SERVE_ALIASES": ",".join(self.serve_aliases),
            "MLFLOW_SERVE_POLL_SECONDS": str(self.serve_poll_seconds),
            "MLPLATFORM_SERVE_MODELS": ",".join(self.serve_models),
            "MLPLATFORM_SERVE_MAX_BODY_MB": str(self.serve_max_body_mb),
            "MLPLATFORM_SERVE_MAX_CONCURRENCY": str(self.serve_max_concurrency),
            "MLPLATFORM_SERVE_TIMEOUT_S": str(self.serve_timeout_s),
            "MLPLATFORM_SERVE_EXTRA_COLUMNS": self.serve_extra_columns,
            "MLPLATFORM_DATA_DIRS": ",".join(str(p) for p in self.data_dirs),
            "MLPLATFORM_SERVING_BACKEND": self.serving_backend,
            "MLPLATFORM_IMAGE": self.image,
            "MLFLOW_SERVE_NETWORK": self.serve_network,
            "MLPLATFORM_SCHEDULER": self.scheduler,
            "MLPLATFORM_EXPORTER_CACHE_SECONDS": str(self.exporter_cache_seconds),
            "MLPLATFORM_MONITORING_DIR": str(self.monitoring_dir),
            "MLPLATFORM_RETRAIN_ON_NEW_DATA": str(self.retrain_on_new_data).lower(),
            "MLPLATFORM_RETRAIN_ON_DRIFT": str(self.retrain_on_drift).lower(),
            "MLPLATFORM_RETRAIN_ON_QUALITY": str(self.retrain_on_quality).lower(),
            "MLPLATFORM_RETRAIN_DRIFT_MIN_FEATURES": str(self.retrain_drift_min_features),
            "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": str(self.retrain_cooldown_minutes),
            "MLPLATFORM_RETRAIN_DAILY_MAX": str(self.retrain_daily_max),
        }
        return {**(base or {}), **{name: value for name, value in values.items() if value}}


def platform_variables() -> tuple[str, ...]:
    """Every variable the settings read (for tools and tests that need an environment without them)."""
    return tuple(str(field.validation_alias) for field in Settings.model_fields.values())
