"""PostgreSQL binary COPY, encoded and decoded with numpy instead of row by row in Python.

Rows whose fields are all fixed-width (numbers, timestamps, fixed-length arrays, per-batch constants) become one
numpy structured array each; variable-length text is grouped by byte length so every group is fixed-width too.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_OIDS = {"float8": 701, "text": 25}
_SCALARS = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8"}
NULL = object()
_VARIABLE = ("text", "nullable_float8")


def _field(data: bytes | None) -> bytes:
    return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data


def constant(kind: str, value) -> bytes:
    """The encoded field (length prefix included) of one value, to repeat on every row."""
    if value is None or value is NULL:
        return _field(None)
    if kind in _SCALARS:
        return _field(np.array(value, dtype=_SCALARS[kind]).tobytes())
    if kind == "text":
        return _field(str(value).encode())
    if kind == "timestamptz":
        micros = round((value - _PG_EPOCH).total_seconds() * 1_000_000)
        return _field(struct.pack(">q", micros))
    if kind in ("text[]", "float8[]"):
        element = kind[:-2]
        body = struct.pack(">iiiii", 1, 0, _OIDS[element], len(value), 1)
        body += b"".join(constant(element, v) for v in value)
        return _field(body)
    raise ValueError(f"unsupported COPY type {kind!r}")


def encode_rows(columns: Sequence[tuple[str, Any]], rows: int) -> bytes:
    """Encode ``rows`` rows; each column is (kind, constant bytes from ``constant``) or (kind, per-row numpy array).

    Per-row kinds: int4, int8, float8 (1-D), float8[] (2-D, one array per row), text (1-D of str, None is NULL, or a
    pandas Categorical, NaN is NULL) and nullable_float8 (1-D, NaN is NULL).
    """
    texts = [i for i, (kind, values) in enumerate(columns) if kind in _VARIABLE and not isinstance(values, bytes)]
    if not texts:
        return _encode_group(columns, np.arange(rows), {})
    # Few distinct labels per column (categories): encode each once, then group rows by their field widths
    # (a width code per column: 0 is NULL, w > 0 is w - 1 bytes of text or a present float).
    encoded: dict[int, np.ndarray] = {}
    lengths = []
    for i in texts:
        kind, values = columns[i]
        if kind == "nullable_float8":
            lengths.append((~np.isnan(values)).astype(np.int64))
            continue
        if isinstance(values, pd.Categorical):
            codes, labels = values.codes, values.categories
        else:
            codes, labels = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)  # hashing, no sort
        as_bytes = np.array([str(label).encode() for label in labels] + [b""], dtype=bytes)  # -1 (NULL): last
        encoded[i] = as_bytes[codes]
        widths = np.array([len(b) + 1 for b in as_bytes[:-1]] + [0], dtype=np.int64)
        lengths.append(widths[codes])
    stacked = np.stack(lengths, axis=1)
    key = np.zeros(rows, dtype=np.int64)
    for column in stacked.T:  # one integer per combination of lengths: a 1-D unique is far faster than axis=0
        key = key * (int(column.max()) + 1) + column
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    parts = []
    for index in np.split(order, starts[1:]):
        parts.append(_encode_group(columns, index, dict(zip(texts, map(int, stacked[index[0]]))), encoded))
    return b"".join(parts)


def _encode_group(
    columns: Sequence[tuple[str, Any]], index: np.ndarray, text_widths: dict[int, int], encoded: dict | None = None
) -> bytes:
    encoded = encoded or {}
    fields: list[tuple] = [("count", ">i2")]
    for i, (kind, values) in enumerate(columns):
        if isinstance(values, bytes):
            fields.append((f"c{i}", f"V{len(values)}"))
        elif kind in _SCALARS:
            fields += [(f"l{i}", ">i4"), (f"v{i}", _SCALARS[kind])]
        elif kind == "float8[]":
            width = values.shape[1]
            fields += [(f"h{i}", "V24"), (f"a{i}", [("l", ">i4"), ("v", ">f8")], (width,))]
        elif kind == "text":  # an empty string or a NULL is its length field alone
            fields += [(f"l{i}", ">i4")] + ([(f"v{i}", f"S{text_widths[i] - 1}")] if text_widths[i] > 1 else [])
        elif kind == "nullable_float8":
            fields += [(f"l{i}", ">i4")] + ([(f"v{i}", ">f8")] if text_widths[i] else [])
        else:
            raise ValueError(f"unsupported per-row COPY type {kind!r}")
    out = np.zeros(len(index), dtype=np.dtype(fields))
    out["count"] = len(columns)
    for i, (kind, values) in enumerate(columns):
        if isinstance(values, bytes):
            out[f"c{i}"] = np.frombuffer(values, dtype=f"V{len(values)}")[0]
        elif kind in _SCALARS:
            out[f"l{i}"] = np.dtype(_SCALARS[kind]).itemsize
            out[f"v{i}"] = values[index]
        elif kind == "float8[]":
            width = values.shape[1]
            header = struct.pack(">iiiiii", 20 + 12 * width, 1, 0, _OIDS["float8"], width, 1)
            out[f"h{i}"] = np.frombuffer(header, dtype="V24")[0]
            out[f"a{i}"]["l"] = 8
            out[f"a{i}"]["v"] = values[index]
        elif kind == "nullable_float8":
            out[f"l{i}"] = 8 if text_widths[i] else -1
            if text_widths[i]:
                out[f"v{i}"] = values[index]
        else:
            out[f"l{i}"] = text_widths[i] - 1
            if text_widths[i] > 1:
                out[f"v{i}"] = encoded[i][index]
    return out.tobytes()


def decode_array(data: bytes, kind: str) -> np.ndarray:
    """A one-dimensional array without NULLs in PostgreSQL's binary form (``array_send``), as a numpy array."""
    dims, has_nulls, _oid = struct.unpack(">iii", data[:12])
    if has_nulls:
        raise ValueError("the array holds NULLs: coalesce them in the query")
    if dims == 0:
        return np.array([], dtype=_SCALARS[kind]).astype(_SCALARS[kind][1:])
    if dims != 1:
        raise ValueError(f"expected a one-dimensional array, got {dims} dimensions")
    size = struct.unpack(">i", data[12:16])[0]
    elements = np.frombuffer(data, dtype=[("length", ">i4"), ("value", _SCALARS[kind])], count=size, offset=20)
    return elements["value"].astype(_SCALARS[kind][1:])
