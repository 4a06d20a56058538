"""Per-column feature types of a raw table, planned from its first rows and checked on every later chunk.

A table is read in chunks, so a column's type is planned from the first chunk and every later chunk is typed by
that plan. A chunk that contradicts the plan (text in a column planned numeric, a repeated value in a column
planned as an ID, ...) raises ``Retype`` with the wider plan for that column; the reader starts again with it, so the
result is the same as typing the whole column at once. Plans, for every feature column (text as read):

- ``drop``: named in ``drop``: left out;
- ``text``: named in ``categorical``, or text that is neither numbers, booleans nor dates: categorical;
- ``boolean``: every non-empty value is ``true``/``false`` (any case): categorical, stored lower-case;
- ``numeric``: every non-empty value is a number: numeric (float, NaN for gaps);
- ``id``: unique per row with at least ``ID_MIN_ROWS`` rows, whole numbers or text: left out;
- dates or times: refused (the message says what to do).

Error messages name the source, the column and a line, never a cell's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"
ID_MIN_ROWS = 20  # below this, a column unique per row may be a genuine feature of a tiny table
_BOOLEANS = {"true", "false"}
_KINDS = {"numeric": NUMERIC, "boolean": CATEGORICAL, "text": CATEGORICAL}
_WHY = {"drop": "dropped by the run config", "id": "unique per row (an ID column)"}
NOT_ID = "not_id"  # a forced plan: type the column by its values, never as an ID


class FeatureTypeError(ValueError):
    """A column the platform cannot type; the message names the column and says what to do."""


class Retype(Exception):  # noqa: N818 - a signal to start reading again, not an error
    """A chunk contradicts a column's plan: read again with ``plan`` for ``column``."""

    def __init__(self, column: str, plan: str) -> None:
        super().__init__(f"column {column!r} is re-planned as {plan}")
        self.column, self.plan = column, plan


@dataclass(frozen=True)
class TypeOverrides:
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    @classmethod
    def parse(cls, categorical: str | list | tuple = (), drop: str | list | tuple = ()) -> TypeOverrides:
        return cls(_names(categorical), _names(drop))


@dataclass(frozen=True)
class TypePlan:
    columns: dict[str, str]  # clean column -> "numeric" | "boolean" | "text" | "id" | "drop", in table order

    @property
    def kinds(self) -> dict[str, str]:
        """Feature -> NUMERIC | CATEGORICAL, for the columns that are features."""
        return {c: _KINDS[p] for c, p in self.columns.items() if p in _KINDS}

    @property
    def dropped(self) -> dict[str, str]:
        return {c: _WHY[p] for c, p in self.columns.items() if p in _WHY}

    @property
    def text_columns(self) -> list[str]:
        """Columns whose raw values are read as text (no number parsing)."""
        return [c for c, p in self.columns.items() if p in ("text", "boolean")]


def _names(value: str | list | tuple) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(v).strip() for v in items if str(v).strip())


def check_overrides(columns: list[str], overrides: TypeOverrides, origin: str) -> None:
    unknown = [n for n in (*overrides.categorical, *overrides.drop) if n not in columns]
    if unknown:
        raise FeatureTypeError(
            f"{origin}: the type overrides name columns it does not have: {', '.join(unknown)}; "
            f"its feature columns are: {', '.join(columns)}"
        )


def plan_types(
    columns: dict[str, pd.Series], overrides: TypeOverrides, forced: dict[str, str], origin: str
) -> TypePlan:
    """The plan from the first chunk: ``columns`` maps the clean name to its raw values (NaN/None for gaps);
    ``forced`` holds the plans that later chunks asked for (``Retype``)."""
    check_overrides(list(columns), overrides, origin)
    plans = {}
    for name, raw in columns.items():
        if name in overrides.drop:
            plans[name] = "drop"
        elif name in overrides.categorical:
            plans[name] = "text"
        elif forced.get(name, NOT_ID) != NOT_ID:
            plans[name] = forced[name]
        else:
            plans[name] = _plan(name, raw, forced.get(name) != NOT_ID, origin)
    plan = TypePlan(plans)
    if not plan.kinds:
        raise FeatureTypeError(f"{origin}: no feature columns are left (dropped: {', '.join(plan.dropped) or 'none'})")
    return plan


def _plan(name: str, raw: pd.Series, may_be_id: bool, origin: str) -> str:
    # Text is examined once per distinct value (``factorize``), not once per row: categories repeat.
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    unique_per_row = may_be_id and len(raw) >= ID_MIN_ROWS and len(uniques) == len(raw)
    if pd.api.types.is_bool_dtype(raw):
        return "boolean"
    if pd.api.types.is_numeric_dtype(raw):
        numbers = pd.Series(uniques, dtype="float64")
    else:
        text = pd.Series(uniques, dtype=object).astype(str).str.strip()
        if len(text) and text.str.lower().isin(_BOOLEANS).all():
            return "boolean"
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.isna().any():
            if _dates(text):
                raise FeatureTypeError(
                    f"{origin}: column {name!r} holds dates or times, which the platform does not train on; derive "
                    f"numeric columns from it (year, month, day of week, ...) or leave it out with --drop {name}"
                )
            return "id" if unique_per_row else "text"
    finite = numbers[np.isfinite(numbers)]
    return "id" if unique_per_row and bool((finite == finite.round()).all()) else "numeric"


@dataclass
class ChunkTyper:
    """Types chunks by a plan; remembers what the end of the table is checked for (columns without values, IDs)."""

    plan: TypePlan
    origin: str
    _ids: dict[str, np.ndarray] = field(default_factory=dict)  # ID column -> sorted hashes of its values so far
    _empty: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._empty = set(self.plan.kinds)

    def type(self, columns: dict[str, pd.Series]) -> pd.DataFrame:
        typed = {}
        for name, plan in self.plan.columns.items():
            raw = columns[name]
            if plan == "id":
                self._check_unique(name, raw)
            elif plan != "drop":
                typed[name] = _TYPERS[plan](name, raw, self.origin)
                if name in self._empty and raw.notna().any():
                    self._empty.discard(name)
        return pd.DataFrame(typed)

    def finish(self) -> None:
        """At the end of the table: a feature that never had a value is refused."""
        for name in self.plan.kinds:
            if name in self._empty:
                raise FeatureTypeError(f"{self.origin}: column {name!r} has no values; drop it (--drop {name})")

    def _check_unique(self, name: str, raw: pd.Series) -> None:
        # An ID keeps 8 bytes per row (a hash of each value) until a repeat shows it is not an ID.
        hashes = np.sort(pd.util.hash_array(raw.to_numpy()))
        seen = self._ids.get(name, np.array([], dtype=np.uint64))
        if raw.isna().any() or (np.diff(hashes) == 0).any() or np.isin(hashes, seen).any():
            raise Retype(name, NOT_ID)
        self._ids[name] = np.union1d(seen, hashes)


def _numeric(name: str, raw: pd.Series, origin: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        raise Retype(name, "text")
    if pd.api.types.is_numeric_dtype(raw):
        numbers = raw.astype("float64")
    else:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object).astype(str).str.strip(), errors="coerce")
        if parsed.isna().any():
            raise Retype(name, "text")
        table = np.append(parsed.to_numpy(dtype="float64"), np.nan)  # code -1 (a gap) takes the last entry
        numbers = pd.Series(table[codes], index=raw.index)
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        raise FeatureTypeError(f"{origin}: column {name!r} holds an infinite value on line {raw.index[infinite][0]}")
    return numbers


def _boolean(name: str, raw: pd.Series, origin: str) -> pd.Series:
    text = _as_text(raw, lower=True)
    if not set(text.cat.categories) <= _BOOLEANS:
        raise Retype(name, "text")
    return text


def _text(name: str, raw: pd.Series, origin: str) -> pd.Series:
    return _as_text(raw)


_TYPERS = {"numeric": _numeric, "boolean": _boolean, "text": _text}


def _as_text(raw: pd.Series, lower: bool = False) -> pd.Series:
    """Text values as a categorical (NaN for gaps), each distinct value converted once; whole numbers (``3.0`` from
    a number column) written as ``3``."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        codes, uniques = raw.cat.codes.to_numpy(), raw.cat.categories
    else:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    labels = [_label(v).strip() for v in uniques]
    if lower:
        labels = [label.lower() for label in labels]
    merged, distinct = pd.factorize(pd.Series(labels, dtype=object))  # labels equal once cleaned share a code
    new_codes = np.where(codes < 0, -1, merged[codes] if len(merged) else codes)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=distinct), index=raw.index)


def _label(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())
