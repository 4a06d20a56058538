"""app-db: datasets, predictions and monitoring reports (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from mlplatform.appdb.engine import engine_for


class AppDatabase(ConfigurableResource):
    uri: str = Field(description="SQLAlchemy URL of app-db (APP_DB_URI).")

    @property
    def engine(self) -> Engine:
        return engine_for(self.uri)
