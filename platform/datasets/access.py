"""Which dataset files a run may read. Runs launched from Dagster's launchpad or an Airflow param read files only
inside the configured data directories (``MLPLATFORM_DATA_DIRS``); the CLI reads whatever its user can."""

from __future__ import annotations

from pathlib import Path

from mlplatform.datasets.sources import BUILTIN, DatasetError


def check_allowed(source: str, data_dirs: list[str] | None) -> None:
    """Raise ``DatasetError`` when ``source`` names a file outside ``data_dirs`` (None: no restriction).

    Built-in datasets and database URLs are not files. Links are resolved first, so a link inside a data directory
    cannot point outside it. The message names the source and the directories, never anything the file holds.
    """
    if data_dirs is None or source in BUILTIN or "://" in source:
        return
    path = Path(source).expanduser().resolve()
    folders = [Path(d).expanduser().resolve() for d in data_dirs]
    if not any(path.is_relative_to(folder) for folder in folders):
        raise DatasetError(
            f"dataset file {source!r} is outside the data directories ({', '.join(map(str, folders))}): runs "
            "launched from Dagster or Airflow read only there; copy the file into one or set MLPLATFORM_DATA_DIRS"
        )
