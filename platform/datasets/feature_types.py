"""Per-column feature types of a raw table: numeric, categorical, or left out (IDs, columns the user drops).

Inference, in order, for every feature column (text as read from the source):

- named in ``drop``: left out;
- named in ``categorical``: categorical (values kept as text);
- every non-empty value is ``true``/``false`` (any case): categorical (a boolean);
- every non-empty value is a number: numeric, unless it is an integer column unique per row (an ID);
- every non-empty value is a date or time: refused (the message says what to do);
- otherwise text: categorical, unless unique per row (an ID).

Error messages name the source, the column and a line, never a cell's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"
ID_MIN_ROWS = 20  # below this, a column unique per row may be a genuine feature of a tiny table
_BOOLEANS = {"true", "false"}


class FeatureTypeError(ValueError):
    """A column the platform cannot type; the message names the column and says what to do."""


@dataclass(frozen=True)
class TypeOverrides:
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    @classmethod
    def parse(cls, categorical: str | list | tuple = (), drop: str | list | tuple = ()) -> TypeOverrides:
        return cls(_names(categorical), _names(drop))


@dataclass
class TypedFeatures:
    frame: pd.DataFrame  # numeric columns as float64, categorical ones as object (str or None)
    kinds: dict[str, str]  # column -> NUMERIC | CATEGORICAL, in frame order
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature


def _names(value: str | list | tuple) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(v).strip() for v in items if str(v).strip())


def type_features(columns: dict[str, pd.Series], overrides: TypeOverrides, origin: str) -> TypedFeatures:
    """``columns`` maps the clean column name to its raw values (text or numbers, NaN/None for gaps)."""
    unknown = [n for n in (*overrides.categorical, *overrides.drop) if n not in columns]
    if unknown:
        raise FeatureTypeError(
            f"{origin}: the type overrides name columns it does not have: {', '.join(unknown)}; "
            f"its feature columns are: {', '.join(columns)}"
        )
    typed: dict[str, pd.Series] = {}
    kinds: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name, raw in columns.items():
        if name in overrides.drop:
            dropped[name] = "dropped by the run config"
            continue
        kind, values = _infer(name, raw, name in overrides.categorical, origin)
        if kind is None:
            dropped[name] = "unique per row (an ID column)"
            continue
        typed[name], kinds[name] = values, kind
    if not typed:
        raise FeatureTypeError(f"{origin}: no feature columns are left (dropped: {', '.join(dropped) or 'none'})")
    return TypedFeatures(pd.DataFrame(typed), kinds, dropped)


def _infer(name: str, raw: pd.Series, categorical: bool, origin: str) -> tuple[str | None, pd.Series]:
    present = raw.dropna()
    if present.empty:
        raise FeatureTypeError(f"{origin}: column {name!r} has no values; drop it (--drop {name})")
    unique_per_row = len(raw) >= ID_MIN_ROWS and present.nunique() == len(raw)
    if categorical:
        return CATEGORICAL, _as_text(raw)
    if pd.api.types.is_bool_dtype(raw) or _text(present).str.lower().isin(_BOOLEANS).all():
        return CATEGORICAL, _as_text(raw).str.lower().where(raw.notna(), None).astype(object)
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().sum() == len(present):
        integral = bool((numbers.dropna() == numbers.dropna().round()).all())
        if unique_per_row and integral:
            return None, raw
        infinite = np.isinf(numbers.to_numpy(dtype="float64"))
        if infinite.any():
            line = raw.index[infinite][0]
            raise FeatureTypeError(f"{origin}: column {name!r} holds an infinite value on line {line}")
        return NUMERIC, numbers.astype("float64")
    if _dates(present):
        raise FeatureTypeError(
            f"{origin}: column {name!r} holds dates or times, which the platform does not train on; derive numeric "
            f"columns from it (year, month, day of week, ...) or leave it out with --drop {name}"
        )
    if unique_per_row:
        return None, raw
    return CATEGORICAL, _as_text(raw)


def _text(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


def _as_text(raw: pd.Series) -> pd.Series:
    """Text values, None for gaps; integral floats (``3.0`` read from a numeric column) written as ``3``."""
    if pd.api.types.is_float_dtype(raw) and bool((raw.dropna() == raw.dropna().round()).all()):
        raw = raw.astype("Int64")
    text = raw.astype(object).where(raw.notna(), None)
    return text.map(lambda v: None if v is None else str(v).strip()).astype(object)


def _dates(present: pd.Series) -> bool:
    sample = _text(present.head(200))
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())
