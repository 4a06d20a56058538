"""A CSV file's own bytes as PostgreSQL ``COPY ... (FORMAT csv)`` input, for files where no value needs converting.

Sending the file as it is spares the client the binary encoding, and the server parses it while the client checks
and hashes the same rows (pandas, as on the binary path). It is only correct where PostgreSQL reads every value as
the binary path would store it, so each chunk is checked first and any doubt raises ``NotVerbatim``: the load is
rolled back and made again on the binary path, which gives the usual refusals. What would differ:

- gap tokens other than an empty cell (``NA``, ``null``...): pandas reads a gap, PostgreSQL text or an error;
- text with surrounding spaces, booleans not in lower case: the binary path strips and lower-cases them;
- rows with every cell empty: the binary path skips them;
- numbers with 16 or more digits or an exponent: pandas' parser is not correctly rounded there, PostgreSQL is;
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
ID_DIGITS = 12  # row ids written zero-padded, so every record gets the same prefix width
MAX_DIGITS = 15  # pandas' float parser is exact up to here (mantissa below 2**53, power of ten exact)
_NEWLINE, _QUOTE, _DOT = ord("\n"), ord('"'), ord(".")


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
        ``NotVerbatim`` for a number pandas may round differently. Ends early once ``stop`` is set."""
        delimiter = self.delimiter.encode()
        pending, next_id, header = b"", 0, True
        with self.path.open("rb") as handle:
            while not stop.is_set():
                block = handle.read(BLOCK_BYTES)
                data = pending + block
                if not block and data and not data.endswith(b"\n"):
                    data += b"\n"  # the last record, without its newline
                array = np.frombuffer(data, dtype=np.uint8)
                ends = _record_ends(array)
                cut = int(ends[-1]) + 1 if len(ends) else 0
                pending = data[cut:]
                starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
                first = 0
                if header and len(starts):  # the header is the first record
                    header, first = False, int(starts[1]) if len(starts) > 1 else cut
                    starts = starts[1:] - first
                if len(starts):
                    records = array[first:cut]
                    _check_numbers(records)
                    yield _numbered(records, starts, next_id, delimiter)
                    next_id += len(starts)
                if not block:
                    return


def _record_ends(data: np.ndarray) -> np.ndarray:
    """Positions of the newlines that end a record: those outside quotes (an even count of quotes before them; the
    data starts at a record's start)."""
    newlines = np.flatnonzero(data == _NEWLINE)
    quotes = data == _QUOTE
    if not quotes.any():
        return newlines
    return newlines[np.cumsum(quotes, dtype=np.int64)[newlines] % 2 == 0]


def _check_numbers(data: np.ndarray) -> None:
    digits = ((data >= ord("0")) & (data <= ord("9"))) | (data == _DOT)
    running = np.concatenate(([0], np.cumsum(digits, dtype=np.int64)))
    if len(data) > MAX_DIGITS and bool((running[MAX_DIGITS + 1 :] - running[: -MAX_DIGITS - 1] > MAX_DIGITS).any()):
        raise NotVerbatim("a number has more digits than pandas parses exactly")
    if bool((digits[:-1] & ((data[1:] | 0x20) == ord("e"))).any()):
        raise NotVerbatim("a number may have an exponent")


def _numbered(records: np.ndarray, starts: np.ndarray, first_id: int, delimiter: bytes) -> bytes:
    ids = np.arange(first_id, first_id + len(starts), dtype=np.int64)
    powers = 10 ** np.arange(ID_DIGITS - 1, -1, -1, dtype=np.int64)
    prefix = np.empty((len(starts), ID_DIGITS + len(delimiter)), dtype=np.uint8)
    prefix[:, :ID_DIGITS] = ids[:, None] // powers % 10 + ord("0")
    prefix[:, ID_DIGITS:] = np.frombuffer(delimiter, dtype=np.uint8)
    return np.insert(records, np.repeat(starts, prefix.shape[1]), prefix.ravel()).tobytes()


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
