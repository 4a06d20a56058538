"""A CSV file read in chunks of rows: encoding checked, delimiter detected, header read, line numbers kept."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlplatform.datasets.errors import DatasetError
from mlplatform.datasets.verbatim import NotVerbatim

SNIFF_BYTES = 64 * 1024
CHUNK_ROWS = 100_000  # rows per chunk: what a load holds in memory at once, whatever the file's size


@dataclass(frozen=True)
class CsvFile:
    path: Path
    origin: str  # "CSV file /abs/path", for messages
    encoding: str
    delimiter: str
    header: list[str]

    def chunks(
        self, text_columns: Sequence[str] = (), chunk_rows: int = CHUNK_ROWS, exact: bool = False
    ) -> Iterator[pd.DataFrame]:
        """Rows in chunks, indexed by their line in the file (the header is line 1); blank lines skipped.

        ``text_columns`` (raw header names) are read as text, without number parsing, as categoricals (each distinct
        value is one string, not one per row). ``exact``: cells as written (spaces kept, only an empty cell is a gap,
        blank lines kept as rows without values), to tell whether the file can be sent as it is (``verbatim``)."""
        as_written = {"skipinitialspace": False, "keep_default_na": False, "na_values": [""]} if exact else {}
        reader = pd.read_csv(
            self.path,
            **{"skipinitialspace": True, **as_written},
            skip_blank_lines=False,
            sep=self.delimiter,
            encoding=self.encoding,
            dtype={c: "category" for c in text_columns},
            chunksize=chunk_rows,
        )
        try:
            with reader:
                for chunk in reader:
                    chunk.index = chunk.index + 2
                    chunk = chunk if exact else chunk.dropna(how="all")
                    if not chunk.empty:
                        yield chunk
        except pd.errors.ParserError as exc:
            if exact:  # the refusal, if any, is the one of the ordinary read
                raise NotVerbatim("the file cannot be parsed as written") from None
            line = re.search(r"line (\d+)", str(exc))
            where = f" on line {line.group(1)}" if line else ""
            raise DatasetError(
                f"{self.origin} cannot be parsed{where}: a row has more fields than the header"
            ) from None


def open_csv(path: Path, encoding: str | None) -> CsvFile:
    """Check the encoding (UTF-8 unless given), detect the delimiter and read the header; nothing else is read."""
    origin = f"CSV file {path}"
    encoding = encoding or _utf8_or_refuse(path, origin)
    with path.open(encoding=encoding, newline="") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise DatasetError(f"{origin} is empty: it needs a header line and at least one row")
    delimiter = _delimiter(head)
    header = next(csv.reader([head.splitlines()[0]], delimiter=delimiter, skipinitialspace=True))
    return CsvFile(path, origin, encoding, delimiter, header)


def _utf8_or_refuse(path: Path, origin: str) -> str:
    """``utf-8-sig`` when the file decodes as UTF-8 (with or without a byte-order mark), else a clear refusal."""
    line = 1
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            if chunk.isascii() and not decoder.getstate()[0]:  # ASCII is UTF-8: no decoding needed (far faster)
                line += chunk.count(b"\n")
                continue
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
