"""The embedded default's MLflow store: a new home's SQLite file starts as a copy of one migrated once.

On first use MLflow migrates a new SQLite store through its whole Alembic history (1.5-3 s on this machine kind),
on the critical path of the first command in a new home (``make demo``). An empty store migrated once per MLflow
version is kept in the user's cache (``$XDG_CACHE_HOME/mlplatform``, else ``~/.cache/mlplatform``) and copied into
each new home. Only the embedded default's own file is made this way: a ``MLFLOW_TRACKING_URI`` set to anything
else is never touched. Both files appear atomically, so processes preparing at the same moment never see half of
one; when the cache cannot be written, MLflow migrates the home's store itself, as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from mlplatform.settings import Settings


def prepare_embedded_store(settings: Settings, cache: Path | None = None) -> None:
    """Give a new embedded home its migrated, empty MLflow store (nothing to do for an existing one or another
    store)."""
    target = settings.home / "mlflow.db"
    if settings.mlflow_tracking_uri != f"sqlite:///{target}" or target.exists():
        return
    try:
        template = migrated_template(cache or _cache_folder())
        _copy_atomically(template, target)
    except OSError:
        return  # MLflow migrates the home's store on first use


def migrated_template(folder: Path) -> Path:
    """The empty store of this MLflow version in ``folder``, migrated now if it is not there yet."""
    template = folder / f"mlflow-{version('mlflow')}.db"
    if not template.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".migrating-") as scratch:
            fresh = Path(scratch) / "mlflow.db"
            from mlflow.tracking import MlflowClient  # noqa: PLC0415 - only when a template is made

            MlflowClient(f"sqlite:///{fresh}").search_experiments(max_results=1)
            fresh.replace(template)
    return template


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless ``target`` appeared meanwhile (another process's store, maybe in use:
    never replaced)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, partial)
    try:
        os.link(partial, target)
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlplatform"
