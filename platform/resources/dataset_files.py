"""Dataset files as a Dagster resource: the folders runs may read them from (``MLPLATFORM_DATA_DIRS``)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from mlplatform.datasets.access import check_allowed


class DatasetFiles(ConfigurableResource):
    data_dirs: list[str] | None = Field(
        default=None,
        description="MLPLATFORM_DATA_DIRS: the folders a run may read dataset files from; none for the CLI's user.",
    )

    def check(self, source: str) -> None:
        """Raise ``DatasetError`` when ``source`` is a file outside the data directories."""
        check_allowed(source, self.data_dirs)
