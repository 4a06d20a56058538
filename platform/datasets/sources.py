"""Read a dataset source as typed chunks: features with SQL-safe names, then the target column.

Sources: a built-in dataset, a CSV file (read in chunks of ``CHUNK_ROWS`` rows, so memory does not grow with the
file; delimiter and encoding detected, or the encoding given), a Parquet file, or a table or query behind any
SQLAlchemy URL. Column types are planned from the first chunk and every chunk is checked against the plan (see
``feature_types``). Every problem is a ``DatasetError`` naming the source, column and line; a problem found in a
later chunk surfaces while the rows are consumed, which a load does inside its one transaction, so nothing is
stored. Messages never quote a cell's value.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from mlplatform.datasets.csv_file import CsvFile, open_csv
from mlplatform.datasets.errors import DatasetError
from mlplatform.datasets.feature_types import (
    ChunkTyper,
    FeatureTypeError,
    Retype,
    TypeOverrides,
    TypePlan,
    plan_types,
)
from mlplatform.datasets.verbatim import Verbatim, check_chunk

# scikit-learn's bundled datasets, by their loader's name in ``sklearn.datasets`` (imported when one is read: about
# 1.5 s that every process loading the code location, each serving run's included, would pay otherwise).
BUILTIN = {"iris": "load_iris", "wine": "load_wine", "breast_cancer": "load_breast_cancer", "diabetes": "load_diabetes"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_CLASSES = 20
MAX_COLUMN_NAME = 63  # PostgreSQL's identifier limit (bytes); SQLite accepts longer, the stricter store decides
RESERVED = "row_id"  # app-db's own key column in every dataset table
MIN_ROWS = 10  # the split needs rows for training and validation
MIN_CLASS_ROWS = 2  # a stratified split needs every class on both sides
_PANDAS_DTYPES = {"numeric": "float64", "categorical": "object", "int": "int64", "float": "float64", "str": "object"}
T = TypeVar("T")

__all__ = [
    "DatasetError",
    "SourceData",
    "SourceRequest",
    "check_source",
    "read_all",
    "read_request",
    "read_source",
    "read_through",
]


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
class RawTable:
    """A source's rows before typing: ``read(text_columns)`` yields chunks indexed by line (header = line 1);
    ``csv`` is the file of a CSV source."""

    origin: str
    header: list[str]
    read: Callable[[Sequence[str]], Iterator[pd.DataFrame]]
    csv: CsvFile | None = None


@dataclass(frozen=True)
class SourceData:
    """A source with its type plan. ``chunks()`` yields typed rows (features as float or text, then the target);
    ``frame`` holds all of them when the source was read whole (``read_all``)."""

    name: str
    target: str  # the target's clean name
    source: str  # builtin name, absolute file path, or URL without password plus table or query
    plan: TypePlan
    target_plan: str  # "int" | "str" (classification) or "float" (regression)
    table: RawTable = field(repr=False)
    raw_target: str = ""
    overrides: TypeOverrides = TypeOverrides()
    forced: dict[str, str] = field(default_factory=dict)  # plans later chunks asked for, by clean column name
    frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def task_type(self) -> str:
        return "regression" if self.target_plan == "float" else "classification"

    @property
    def kinds(self) -> dict[str, str]:
        return self.plan.kinds

    @property
    def dropped(self) -> dict[str, str]:
        return self.plan.dropped

    @property
    def features(self) -> list[str]:
        return list(self.plan.kinds)

    @property
    def columns(self) -> list[dict]:
        """The stored columns: features, then the target, with app-db dtype and kind."""
        dtypes = {"numeric": "float", "categorical": "str"}
        features = [{"name": c, "dtype": dtypes[k], "kind": k} for c, k in self.kinds.items()]
        return [*features, {"name": self.target, "dtype": self.target_plan, "kind": "target"}]

    @property
    def pandas_dtypes(self) -> dict[str, str]:
        return {c["name"]: _PANDAS_DTYPES[c["dtype"]] for c in self.columns}

    def verbatim(self) -> Verbatim | None:
        """The CSV file as COPY input when it may be sent as written: UTF-8 and every column stored. Its chunks are
        still checked, read with ``chunks(verbatim=True)``."""
        csv = self.table.csv
        if csv is None or self.frame is not None or csv.encoding != "utf-8-sig" or self.dropped:
            return None
        return Verbatim(csv.path, csv.delimiter, [sql_name(raw) for raw in csv.header])

    def chunks(self, verbatim: bool = False) -> Iterator[pd.DataFrame]:
        """Typed chunks (index from 0 within each); raises ``Retype`` when a chunk widens the plan (see
        ``read_through``) and ``DatasetError`` for bad rows, the end-of-table checks after the last chunk.

        ``verbatim`` (a CSV file whose ``verbatim()`` is sent): the file is read as written and each chunk checked
        first, ``NotVerbatim`` when a value needs converting."""
        if self.frame is not None:
            yield self.frame
            return
        renamed = {raw: sql_name(raw) for raw in self.table.header}
        text = [raw for raw, clean in renamed.items() if clean in self.plan.text_columns]
        if self.target_plan == "str":
            text.append(self.raw_target)
        typer = ChunkTyper(self.plan, self.table.origin)
        labels = _Labels(self.target_plan, self.raw_target, self.target, self.table.origin)
        plans = {raw: self.plan.columns[renamed[raw]] for raw in self.table.header if raw != self.raw_target}
        plans[self.raw_target] = self.target_plan
        read = self.table.read
        if verbatim:
            assert self.table.csv is not None
            read = functools.partial(self.table.csv.chunks, exact=True)
        try:
            for chunk in read(text):
                if verbatim:
                    check_chunk(chunk, plans)
                typed = typer.type({renamed[c]: chunk[c] for c in chunk.columns if c != self.raw_target})
                typed[self.target] = labels.add(chunk[self.raw_target])
                yield typed.reset_index(drop=True)
            typer.finish()
        except FeatureTypeError as exc:
            raise DatasetError(str(exc)) from None
        labels.finish()

    def retyped(self, change: Retype) -> SourceData:
        """The same source planned again, with ``change`` forced."""
        return _planned(
            self.table,
            self.name,
            self.source,
            self.raw_target,
            self.overrides,
            {**self.forced, change.column: change.plan},
        )


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
    """``spec`` is a built-in name (``iris``) or a file path; ``target`` is required for files. Read whole."""
    return read_all(SourceRequest(spec, target, name, overrides or TypeOverrides()))


def read_all(request: SourceRequest) -> SourceData:
    """The source read through and held in memory (``frame``): for small tables and tests; loads stream."""

    def whole(data: SourceData) -> SourceData:
        frame = pd.concat(list(data.chunks()), ignore_index=True).astype(data.pandas_dtypes)
        text = [c for c, dtype in data.pandas_dtypes.items() if dtype == "object"]
        frame[text] = frame[text].where(frame[text].notna(), None)  # text (str or None), as app-db gives it back
        return dataclasses.replace(data, frame=frame)

    return read_through(read_request(request), whole)


def check_source(request: SourceRequest) -> SourceData:
    """Read the source through without keeping its rows: every refusal surfaces, memory stays bounded."""

    def scan(data: SourceData) -> SourceData:
        for _ in data.chunks():
            pass
        return data

    return read_through(read_request(request), scan)


def read_through(data: SourceData, consume: Callable[[SourceData], T]) -> T:
    """``consume(data)``, started again with the wider plan whenever a chunk asks for one (each column's plan only
    widens, so this ends)."""
    while True:
        try:
            return consume(data)
        except Retype as change:
            data = data.retyped(change)


def read_request(request: SourceRequest) -> SourceData:
    """The source with its headers checked and its types planned from the first chunk; rows are read by
    ``chunks()``."""
    spec = request.spec
    if spec in BUILTIN:
        from sklearn import datasets as sk_datasets  # noqa: PLC0415 - see BUILTIN

        frame = getattr(sk_datasets, BUILTIN[spec])(as_frame=True).frame
        frame.index = frame.index + 2
        name = validate_name(request.name or spec)
        table = _frame_table(frame, f"built-in dataset {spec!r}")
        return _planned(table, name, spec, "target", request.overrides, {})
    if "://" in spec:
        from mlplatform.datasets.sql_source import read_sql_source

        frame, origin, default_name, spec = read_sql_source(spec, request.table, request.query)
        table = _frame_table(frame, origin)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            known = ", ".join(sorted(BUILTIN))
            raise DatasetError(f"dataset {spec!r} is neither a built-in ({known}) nor an existing file")
        table = _parquet_table(path) if _is_parquet(path) else _csv_table(path, request.encoding)
        default_name, spec = sql_name(path.stem)[:40], str(path.resolve())
    check_headers(table.header, table.origin)
    if not request.target:
        raise DatasetError(f"{table.origin} needs a target column: pass --target COLUMN")
    name = validate_name(request.name or default_name)
    return _planned(table, name, spec, request.target, request.overrides, {})


def _frame_table(frame: pd.DataFrame, origin: str) -> RawTable:
    return RawTable(origin, [str(c) for c in frame.columns], lambda _text: iter([frame.rename(columns=str)]))


def _csv_table(path: Path, encoding: str | None) -> RawTable:
    csv_file = open_csv(path, encoding)
    return RawTable(csv_file.origin, csv_file.header, csv_file.chunks, csv_file)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _parquet_table(path: Path) -> RawTable:
    origin = f"Parquet file {path}"
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{origin} cannot be read as Parquet: {type(exc).__name__}") from None
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # "line" = row number + 1, as if the header were line 1
    return _frame_table(frame, origin)


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


def _planned(
    table: RawTable, name: str, source: str, target: str, overrides: TypeOverrides, forced: dict[str, str]
) -> SourceData:
    """Plan the feature and target types from the first chunk."""
    origin = table.origin
    target = _resolve_target(table.header, target, origin)
    renamed = {column: sql_name(column) for column in table.header}
    clashes = _clashes(renamed)
    if clashes:
        raise DatasetError(f"{origin}: columns {clashes} map to the same column name; rename them")
    if len(table.header) < 2:
        raise DatasetError(f"{origin} has only the target column {target!r}: no feature columns")
    first = next(table.read(()), None)
    if first is None:
        raise DatasetError(f"{origin} has a header but no data rows")
    try:
        features = {renamed[c]: first[c] for c in table.header if c != target}
        plan = plan_types(features, overrides, forced, origin)
    except FeatureTypeError as exc:
        raise DatasetError(str(exc)) from None
    target_plan = forced.get(renamed[target]) or _target_plan(first[target])
    return SourceData(name, renamed[target], source, plan, target_plan, table, target, overrides, forced)


@dataclass
class _Labels:
    """Types the target chunk by chunk and keeps what the end-of-table checks need: rows, gaps, class counts."""

    plan: str
    raw_name: str
    clean_name: str
    origin: str
    rows: int = 0
    gaps: int = 0
    first_gap: int = 0
    classes: dict = field(default_factory=dict)  # label -> [rows, first line]

    def add(self, raw: pd.Series) -> pd.Series:
        self.rows += len(raw)
        missing = raw.isna()
        if missing.any():
            self.first_gap = self.first_gap or int(raw.index[missing][0])
            self.gaps += int(missing.sum())
        labels = self._typed(raw[~missing])
        if self.plan != "float":
            firsts = labels.drop_duplicates()  # each class's first row in this chunk, indexed by line
            for (line, label), count in zip(firsts.items(), labels.value_counts(sort=False)[firsts].to_numpy()):
                self.classes.setdefault(label, [0, int(line)])[0] += int(count)
            if self.plan == "int" and len(self.classes) > MAX_CLASSES:
                raise Retype(self.clean_name, "float")
        return labels.reindex(raw.index, fill_value=0 if self.plan == "int" else None)

    def _typed(self, raw: pd.Series) -> pd.Series:
        if self.plan == "str":
            codes, uniques = pd.factorize(raw)
            table = np.array([str(v).strip() for v in uniques], dtype=object)
            return pd.Series(table[codes], index=raw.index, dtype=object)
        numbers = pd.to_numeric(raw, errors="coerce")
        if numbers.isna().any():
            raise Retype(self.clean_name, "str")
        if self.plan == "float":
            return numbers.astype("float64")
        if not bool((numbers == numbers.round()).all()):
            raise Retype(self.clean_name, "float")
        return numbers.astype("int64")

    def finish(self) -> None:
        target, origin = self.raw_name, self.origin
        if self.gaps:
            raise DatasetError(
                f"{origin}: target column {target!r} is empty on {self.gaps} rows, the first on line "
                f"{self.first_gap}; fill or remove those rows"
            )
        if self.rows < MIN_ROWS:
            raise DatasetError(f"{origin} has {self.rows} rows; training and validation need at least {MIN_ROWS}")
        if self.plan == "float":
            return
        if len(self.classes) < 2:
            raise DatasetError(f"{origin}: target column {target!r} has a single class; classification needs two")
        rare = [first for count, first in self.classes.values() if count < MIN_CLASS_ROWS]
        if rare:
            raise DatasetError(
                f"{origin}: target column {target!r} has {len(rare)} class(es) with fewer than {MIN_CLASS_ROWS} "
                f"rows (the first on line {min(rare)}); the split needs each class in training and validation"
            )


def _target_plan(labels: pd.Series) -> str:
    labels = labels.dropna()
    numeric = pd.to_numeric(labels, errors="coerce")
    if labels.empty or numeric.isna().any():
        return "str"
    integral = bool((numeric == numeric.round()).all())
    return "int" if integral and numeric.nunique() <= MAX_CLASSES else "float"


def _resolve_target(header: list[str], target: str, origin: str) -> str:
    """The header that is ``target``, as written or as its SQL-safe name (how app-db records it)."""
    if target in header:
        return target
    matches = [c for c in header if sql_name(c) == target]
    if len(matches) == 1:
        return matches[0]
    raise DatasetError(f"{origin} has no target column {target!r}; its columns are: {', '.join(header)}")


def _clashes(renamed: dict) -> list[str]:
    seen: dict[str, list[str]] = {}
    for raw, new in renamed.items():
        seen.setdefault(new, []).append(str(raw))
    return [", ".join(group) for group in seen.values() if len(group) > 1]
