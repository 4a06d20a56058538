"""Read a dataset source into a clean frame: numeric features with SQL-safe names, then the target column.

Every problem is a ``DatasetError`` naming the file, column, line and value, raised before anything is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn import datasets as sk_datasets

BUILTIN = {
    "iris": sk_datasets.load_iris,
    "wine": sk_datasets.load_wine,
    "breast_cancer": sk_datasets.load_breast_cancer,
    "diabetes": sk_datasets.load_diabetes,
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_CLASSES = 20


class DatasetError(ValueError):
    """A dataset source that cannot be loaded; the message says what is wrong and where."""


@dataclass(frozen=True)
class SourceData:
    name: str
    frame: pd.DataFrame  # feature columns (float) followed by the target column
    target: str
    task_type: str  # "classification" or "regression"
    source: str  # builtin name or absolute CSV path

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]


def sql_name(raw: str) -> str:
    """``sepal length (cm)`` -> ``sepal_length_cm``: safe as a column name in every store and in JSON payloads."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", str(raw)).strip("_").lower()
    if not name:
        raise DatasetError(f"column name {raw!r} has no letters or digits")
    return name if name[0].isalpha() else f"c_{name}"


def validate_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise DatasetError(
            f"dataset name {name!r} is invalid: use 1-40 lower-case letters, digits or '_', starting with a letter"
        )
    return name


def read_source(spec: str, target: str | None = None, name: str | None = None) -> SourceData:
    """``spec`` is a built-in name (``iris``) or a CSV path; ``target`` is required for CSV files."""
    if spec in BUILTIN:
        bunch = BUILTIN[spec](as_frame=True)
        frame = bunch.frame
        return _clean(frame, "target", validate_name(name or spec), spec, origin=f"built-in dataset {spec!r}")
    path = Path(spec).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(BUILTIN))
        raise DatasetError(f"dataset {spec!r} is neither a built-in ({known}) nor an existing CSV file")
    if not target:
        raise DatasetError(f"CSV file {path} needs a target column: pass --target COLUMN")
    frame = _read_csv(path)
    default_name = sql_name(path.stem)[:40]
    return _clean(frame, target, validate_name(name or default_name), str(path.resolve()), origin=f"CSV file {path}")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, skipinitialspace=True, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"CSV file {path} is empty: it needs a header line and at least one row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"CSV file {path} cannot be parsed: {exc}") from None
    frame.index = frame.index + 2  # the file's line numbers (the header is line 1), for error messages
    frame = frame.dropna(how="all")
    if frame.empty:
        raise DatasetError(f"CSV file {path} has a header but no data rows")
    return frame


def _clean(frame: pd.DataFrame, target: str, name: str, source: str, origin: str) -> SourceData:
    target = _resolve_target(frame, target, origin)
    renamed = {column: sql_name(column) for column in frame.columns}
    clashes = _clashes(renamed)
    if clashes:
        raise DatasetError(f"{origin}: columns {clashes} map to the same column name; rename them")
    features = [c for c in frame.columns if c != target]
    if not features:
        raise DatasetError(f"{origin} has only the target column {target!r}: no feature columns")
    clean = pd.DataFrame({renamed[c]: _numeric(frame[c], c, origin) for c in features})
    labels = frame[target]
    if labels.isna().any():
        line = labels.index[labels.isna()][0]
        raise DatasetError(f"{origin}: target column {target!r} is empty on line {line}")
    task_type, labels = _task_type(labels)
    if task_type == "classification" and labels.nunique() < 2:
        raise DatasetError(f"{origin}: target column {target!r} has a single class; classification needs two")
    clean[renamed[target]] = labels.to_numpy()
    return SourceData(name=name, frame=clean, target=renamed[target], task_type=task_type, source=source)


def _resolve_target(frame: pd.DataFrame, target: str, origin: str) -> str:
    """The header that is ``target``, as written or as its SQL-safe name (how app-db records it)."""
    if target in frame.columns:
        return target
    matches = [c for c in frame.columns if sql_name(c) == target]
    if len(matches) == 1:
        return matches[0]
    columns = ", ".join(map(str, frame.columns))
    raise DatasetError(f"{origin} has no target column {target!r}; its columns are: {columns}")


def _clashes(renamed: dict) -> list[str]:
    seen: dict[str, list[str]] = {}
    for raw, new in renamed.items():
        seen.setdefault(new, []).append(str(raw))
    return [", ".join(group) for group in seen.values() if len(group) > 1]


def _numeric(column: pd.Series, label: str, origin: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        line = bad.index[bad][0]
        raise DatasetError(f"{origin}: column {label!r} must be numeric, but line {line} holds {column[line]!r}")
    if values.isna().all():
        raise DatasetError(f"{origin}: column {label!r} has no values")
    return values.astype("float64")


def _task_type(labels: pd.Series) -> tuple[str, pd.Series]:
    numeric = pd.to_numeric(labels, errors="coerce")
    if numeric.notna().all():
        integral = bool((numeric == numeric.round()).all())
        if integral and numeric.nunique() <= MAX_CLASSES:
            return "classification", numeric.astype("int64")
        return "regression", numeric.astype("float64")
    return "classification", labels.astype(str)
