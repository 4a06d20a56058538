"""Read a dataset source into a clean frame: typed features with SQL-safe names, then the target column.

Sources: a built-in dataset, a CSV file (delimiter and encoding detected, or the encoding given), a Parquet file,
or a table or query behind any SQLAlchemy URL. Every problem is a ``DatasetError`` naming the source, column and
line, raised before anything is stored. Messages never quote a cell's value.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sklearn import datasets as sk_datasets

from mlplatform.datasets.feature_types import FeatureTypeError, TypeOverrides, type_features

BUILTIN = {
    "iris": sk_datasets.load_iris,
    "wine": sk_datasets.load_wine,
    "breast_cancer": sk_datasets.load_breast_cancer,
    "diabetes": sk_datasets.load_diabetes,
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_CLASSES = 20
MAX_COLUMN_NAME = 63  # PostgreSQL's identifier limit (bytes); SQLite accepts longer, the stricter store decides
RESERVED = "row_id"  # app-db's own key column in every dataset table
MIN_ROWS = 10  # the split needs rows for training and validation
MIN_CLASS_ROWS = 2  # a stratified split needs every class on both sides
SNIFF_BYTES = 64 * 1024


class DatasetError(ValueError):
    """A dataset source that cannot be loaded; the message says what is wrong and where."""


@dataclass(frozen=True)
class SourceRequest:
    """What to load: ``spec`` is a built-in name, a CSV or Parquet path, or a SQLAlchemy URL (with table or query)."""

    spec: str
    target: str | None = None
    name: str | None = None
    overrides: TypeOverrides = TypeOverrides()
    encoding: str | None = None
    table: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class SourceData:
    name: str
    frame: pd.DataFrame  # feature columns (float or text) followed by the target column
    target: str
    task_type: str  # "classification" or "regression"
    source: str  # builtin name, absolute file path, or URL without password plus table or query
    kinds: dict[str, str] = field(default_factory=dict)  # feature -> "numeric" | "categorical"
    dropped: dict[str, str] = field(default_factory=dict)  # left-out column -> why

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


def read_source(
    spec: str, target: str | None = None, name: str | None = None, overrides: TypeOverrides | None = None
) -> SourceData:
    """``spec`` is a built-in name (``iris``) or a file path; ``target`` is required for files."""
    return read_request(SourceRequest(spec, target, name, overrides or TypeOverrides()))


def read_request(request: SourceRequest) -> SourceData:
    spec = request.spec
    if spec in BUILTIN:
        frame = BUILTIN[spec](as_frame=True).frame
        frame.index = frame.index + 2
        name = validate_name(request.name or spec)
        return _clean(frame, "target", name, spec, f"built-in dataset {spec!r}", request.overrides)
    if "://" in spec:
        from mlplatform.datasets.sql_source import read_sql_source

        frame, origin, default_name, spec = read_sql_source(spec, request.table, request.query)
        check_headers([str(c) for c in frame.columns], origin)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            known = ", ".join(sorted(BUILTIN))
            raise DatasetError(f"dataset {spec!r} is neither a built-in ({known}) nor an existing file")
        origin = f"{'Parquet' if _is_parquet(path) else 'CSV'} file {path}"
        frame = _read_parquet(path, origin) if _is_parquet(path) else _read_csv(path, origin, request.encoding)
        default_name, spec = sql_name(path.stem)[:40], str(path.resolve())
    if not request.target:
        raise DatasetError(f"{origin} needs a target column: pass --target COLUMN")
    name = validate_name(request.name or default_name)
    return _clean(frame, request.target, name, spec, origin, request.overrides)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _read_parquet(path: Path, origin: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{origin} cannot be read as Parquet: {type(exc).__name__}") from None
    check_headers([str(c) for c in frame.columns], origin)
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # "line" = row number + 1, as if the header were line 1
    return frame


def _read_csv(path: Path, origin: str, encoding: str | None) -> pd.DataFrame:
    encoding = encoding or _utf8_or_refuse(path, origin)
    with path.open(encoding=encoding, newline="") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise DatasetError(f"{origin} is empty: it needs a header line and at least one row")
    delimiter = _delimiter(head)
    header = next(csv.reader([head.splitlines()[0]], delimiter=delimiter))
    check_headers(header, origin)
    try:
        frame = pd.read_csv(path, skipinitialspace=True, skip_blank_lines=False, sep=delimiter, encoding=encoding)
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f" on line {line.group(1)}" if line else ""
        raise DatasetError(f"{origin} cannot be parsed{where}: a row has more fields than the header") from None
    frame.index = frame.index + 2  # the file's line numbers (the header is line 1), for error messages
    frame = frame.dropna(how="all")
    if frame.empty:
        raise DatasetError(f"{origin} has a header but no data rows")
    return frame


def _utf8_or_refuse(path: Path, origin: str) -> str:
    """``utf-8-sig`` when the file decodes as UTF-8 (with or without a byte-order mark), else a clear refusal."""
    line = 1
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk[: exc.start].count(b"\n")
                raise DatasetError(
                    f"{origin} is not UTF-8 (first undecodable byte on line {line}); pass its encoding, "
                    "e.g. --encoding latin-1"
                ) from None
            line += chunk.count(b"\n")
    return "utf-8-sig"


def _delimiter(head: str) -> str:
    try:
        return csv.Sniffer().sniff(head.splitlines()[0], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def check_headers(header: list[str], origin: str) -> None:
    """Blank, duplicate, reserved and over-long column names, each refused with its column position."""
    seen: dict[str, int] = {}
    for position, raw in enumerate(header, start=1):
        if not str(raw).strip():
            raise DatasetError(f"{origin}: column {position} has a blank header on line 1; name it")
        if raw in seen:
            raise DatasetError(
                f"{origin}: header {raw!r} appears twice on line 1 (columns {seen[raw]} and {position}); rename one"
            )
        seen[raw] = position
        clean = sql_name(raw)
        if clean == RESERVED:
            raise DatasetError(
                f"{origin}: column {position} is named {raw!r} (line 1), which app-db reserves; rename it"
            )
        if len(clean) > MAX_COLUMN_NAME:
            raise DatasetError(
                f"{origin}: header of column {position} on line 1 is {len(clean)} characters as a column name; "
                f"the stores accept at most {MAX_COLUMN_NAME}: shorten it"
            )


def _clean(
    frame: pd.DataFrame, target: str, name: str, source: str, origin: str, overrides: TypeOverrides
) -> SourceData:
    target = _resolve_target(frame, target, origin)
    renamed = {column: sql_name(column) for column in frame.columns}
    clashes = _clashes(renamed)
    if clashes:
        raise DatasetError(f"{origin}: columns {clashes} map to the same column name; rename them")
    features = [c for c in frame.columns if c != target]
    if not features:
        raise DatasetError(f"{origin} has only the target column {target!r}: no feature columns")
    labels = frame[target]
    gaps = labels.isna()
    if gaps.any():
        raise DatasetError(
            f"{origin}: target column {target!r} is empty on {int(gaps.sum())} rows, the first on line "
            f"{labels.index[gaps][0]}; fill or remove those rows"
        )
    try:
        typed = type_features({renamed[c]: frame[c] for c in features}, overrides, origin)
    except FeatureTypeError as exc:
        raise DatasetError(str(exc)) from None
    task_type, labels = _task_type(labels)
    _check_rows(labels, task_type, target, origin)
    clean = typed.frame.reset_index(drop=True)
    clean[renamed[target]] = labels.to_numpy()
    return SourceData(name, clean, renamed[target], task_type, source, typed.kinds, typed.dropped)


def _check_rows(labels: pd.Series, task_type: str, target: str, origin: str) -> None:
    if len(labels) < MIN_ROWS:
        raise DatasetError(f"{origin} has {len(labels)} rows; training and validation need at least {MIN_ROWS}")
    if task_type != "classification":
        return
    counts = labels.value_counts()
    if len(counts) < 2:
        raise DatasetError(f"{origin}: target column {target!r} has a single class; classification needs two")
    rare = counts[counts < MIN_CLASS_ROWS]
    if not rare.empty:
        line = labels.index[labels.isin(rare.index)][0]
        raise DatasetError(
            f"{origin}: target column {target!r} has {len(rare)} class(es) with fewer than {MIN_CLASS_ROWS} rows "
            f"(the first on line {line}); the split needs each class in training and validation"
        )


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


def _task_type(labels: pd.Series) -> tuple[str, pd.Series]:
    numeric = pd.to_numeric(labels, errors="coerce")
    if numeric.notna().all():
        integral = bool((numeric == numeric.round()).all())
        if integral and numeric.nunique() <= MAX_CLASSES:
            return "classification", numeric.astype("int64")
        return "regression", numeric.astype("float64")
    return "classification", labels.astype(str).str.strip()
