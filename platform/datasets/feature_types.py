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
    # Text is examined once per distinct value (``factorize``), not once per row: categories repeat.
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    if len(uniques) == 0:
        raise FeatureTypeError(f"{origin}: column {name!r} has no values; drop it (--drop {name})")
    unique_per_row = len(raw) >= ID_MIN_ROWS and len(uniques) == len(raw)
    if categorical:
        return CATEGORICAL, _as_text(raw, codes, uniques)
    if pd.api.types.is_bool_dtype(raw):
        return CATEGORICAL, _as_text(raw, codes, uniques, lower=True)
    if pd.api.types.is_numeric_dtype(raw):
        numbers = raw.astype("float64")
    else:
        text = pd.Series(uniques, dtype=object).astype(str).str.strip()
        if text.str.lower().isin(_BOOLEANS).all():
            return CATEGORICAL, _as_text(raw, codes, uniques, lower=True)
        parsed = pd.to_numeric(text, errors="coerce")
        if parsed.notna().all():
            numbers = pd.Series(np.where(codes < 0, np.nan, parsed.to_numpy(dtype="float64")[codes]), index=raw.index)
        elif _dates(text):
            raise FeatureTypeError(
                f"{origin}: column {name!r} holds dates or times, which the platform does not train on; derive "
                f"numeric columns from it (year, month, day of week, ...) or leave it out with --drop {name}"
            )
        else:
            return (None, raw) if unique_per_row else (CATEGORICAL, _as_text(raw, codes, uniques))
    values = numbers.to_numpy()
    finite = values[~np.isnan(values)]
    if unique_per_row and bool((finite == np.round(finite)).all()):
        return None, raw
    infinite = np.isinf(values)
    if infinite.any():
        line = raw.index[infinite][0]
        raise FeatureTypeError(f"{origin}: column {name!r} holds an infinite value on line {line}")
    return NUMERIC, numbers


def _as_text(raw: pd.Series, codes: np.ndarray, uniques, lower: bool = False) -> pd.Series:
    """Text values, None for gaps; integral numbers (``3.0`` from a numeric column) written as ``3``."""
    labels = pd.Series(uniques)
    if pd.api.types.is_float_dtype(labels) and bool((labels == labels.round()).all()):
        labels = labels.astype("int64")
    text = labels.astype(str).str.strip()
    if lower:
        text = text.str.lower()
    table = np.array([*text.tolist(), None], dtype=object)  # code -1 (a gap) takes the last entry
    return pd.Series(table[codes], index=raw.index, dtype=object)


def _dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())
