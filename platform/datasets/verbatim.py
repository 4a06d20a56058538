"""A CSV file's own bytes as PostgreSQL ``COPY ... (FORMAT csv)`` input, for files where no value needs converting.

Sending the file as it is spares the client the binary encoding, and the server parses it while the client checks
and hashes the same rows (pandas, as on the binary path). It is only correct where PostgreSQL reads every value as
the binary path would store it, so every chunk is checked before the load commits and any doubt raises
``NotVerbatim``: the load is rolled back and made again on the binary path, which gives the usual refusals. What would
differ:

- gap tokens other than an empty cell (``NA``, ``null``...): pandas reads a gap, PostgreSQL text or an error;
- text with surrounding spaces, booleans not in lower case: the binary path strips and lower-cases them;
- rows with every cell empty: the binary path skips them;
- a run of more than 15 digits and points, or an exponent: pandas' parser may round otherwise than PostgreSQL's;
- anything PostgreSQL refuses (its error aborts the COPY).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES

BLOCK_BYTES = 1 << 20
MAX_DIGITS = 15  # pandas' float parser is exact up to here (mantissa below 2**53, power of ten exact)
_NEWLINE, _QUOTE = ord("\n"), ord('"')
# Each byte to its class: d for a digit or the point, e for an exponent's letter, x for anything else.
_DIGITS = bytes(b"d"[0] if chr(i) in "0123456789." else b"e"[0] if chr(i) in "eE" else b"x"[0] for i in range(256))


class NotVerbatim(Exception):  # noqa: N818 - a signal to load on the binary path, not an error
    """A value of the file would not be stored as the binary path stores it."""


@dataclass(frozen=True)
class Verbatim:
    """The rows of ``path`` for COPY: ``columns`` are the stored names of the file's columns, in the file's order."""

    path: Path
    delimiter: str
    columns: list[str]

    def blocks(self, stop: threading.Event) -> Iterator[bytes]:
        """The records after the header, each prefixed with its row id (0, 1, ...), about ``BLOCK_BYTES`` at a time;
        ``NotVerbatim`` for a number pandas may round otherwise. Ends early once ``stop`` is set."""
        delimiter = self.delimiter.encode()
        pending, next_id, header = b"", 0, True
        with self.path.open("rb") as handle:
            while not stop.is_set():
                block = handle.read(BLOCK_BYTES)
                data = pending + block
                if not block and data and not data.endswith(b"\n"):
                    data += b"\n"  # the last record, without its newline
                ends = _record_ends(data)
                cut = int(ends[-1]) + 1 if len(ends) else 0
                records, pending = data[:cut], data[cut:]
                if header and len(ends):  # the header is the first record
                    header, skip = False, int(ends[0]) + 1
                    records, ends = records[skip:], ends[1:] - skip
                if len(ends):
                    _check_numbers(records)
                    yield _numbered(records, ends, next_id, delimiter)
                    next_id += len(ends)
                if not block:
                    return


def _record_ends(data: bytes) -> np.ndarray:
    """Positions of the newlines that end a record: those outside quotes (an even count of quotes before them; the
    data starts at a record's start)."""
    array = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(array == _NEWLINE)
    if b'"' not in data:
        return newlines
    return newlines[np.cumsum(array == _QUOTE, dtype=np.int64)[newlines] % 2 == 0]


def _check_numbers(data: bytes) -> None:
    classes = data.translate(_DIGITS)
    if b"d" * (MAX_DIGITS + 1) in classes:
        raise NotVerbatim("a number has more digits than pandas parses exactly")
    if b"de" in classes:
        raise NotVerbatim("a number may have an exponent")


def _numbered(records: bytes, ends: np.ndarray, first_id: int, delimiter: bytes) -> bytes:
    """``records`` with ``first_id``, ``first_id + 1``, ... and the delimiter before each, the ids zero-padded to
    one width."""
    count = len(ends)
    digits = len(str(first_id + count - 1))
    width = digits + len(delimiter)
    ids = np.arange(first_id, first_id + count, dtype=np.int64)
    prefix = np.empty((count, width), dtype=np.uint8)
    prefix[:, :digits] = ids[:, None] // 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64) % 10 + ord("0")
    prefix[:, digits:] = np.frombuffer(delimiter, dtype=np.uint8)
    starts = np.concatenate(([0], ends[:-1] + 1))
    at = (starts + np.arange(count) * width)[:, None] + np.arange(width)  # where each prefix goes in the output
    out = np.empty(len(records) + count * width, dtype=np.uint8)
    out[at] = prefix
    body = np.ones(len(out), dtype=bool)
    body[at] = False
    out[body] = np.frombuffer(records, dtype=np.uint8)
    return out.tobytes()


def check_chunk(chunk: pd.DataFrame, plans: dict[str, str]) -> None:
    """``NotVerbatim`` when a raw chunk (read with ``exact=True``) holds a value the binary path would convert.

    ``plans``: raw column -> ``numeric`` | ``boolean`` | ``text`` for features, ``int`` | ``float`` | ``str`` for
    the target."""
    if bool(chunk.isna().all(axis=1).any()):
        raise NotVerbatim("a row has no values")
    for column, plan in plans.items():
        raw = chunk[column]
        if plan in ("numeric", "int", "float"):
            if not pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
                raise NotVerbatim(f"column {column!r} holds text")
            continue
        labels = [str(v) for v in raw.cat.categories] if isinstance(raw.dtype, pd.CategoricalDtype) else None
        if labels is None or any(label != label.strip() or label in STR_NA_VALUES for label in labels):
            raise NotVerbatim(f"column {column!r} holds text to clean")
        if plan == "boolean" and any(label != label.lower() for label in labels):
            raise NotVerbatim(f"column {column!r} holds booleans to lower-case")
