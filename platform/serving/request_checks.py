"""What the gateway checks before a request reaches a scoring server: the body parses, and its columns are exactly
the model's. MLflow's scoring server silently drops an extra column and echoes a bad body back whole; the gateway
answers 400 with a short message that names the problem and never quotes the body.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
NAMED_ROW_KEYS = ("instances", "inputs")  # lists of {column: value} objects
MAX_NAMES_SHOWN = 5


@dataclass(frozen=True)
class Rejection:
    """Why a request is refused: an HTTP status, MLflow's error code, and a message naming the problem."""

    status: int
    error_code: str
    message: str

    def as_json(self) -> dict:
        return {"error_code": self.error_code, "message": self.message}


def check_invocation(body: bytes, content_type: str, columns: list[str] | None, strict: bool) -> Rejection | None:
    """None when the body may go on to the scoring server; otherwise why not.

    ``columns`` are the model's input columns (None: unknown, not checked); with ``strict``, a column the model does
    not take is refused instead of being dropped by MLflow.
    """
    if not body.strip():
        return _bad("the request body is empty: send dataframe_split, dataframe_records, instances or inputs")
    if content_type in JSON_TYPES:
        try:
            payload = json.loads(body)
        except RecursionError:
            return _bad("the JSON body is nested too deeply")
        except (UnicodeDecodeError, ValueError) as exc:
            return _bad(f"the body is not valid JSON ({type(exc).__name__} at position {getattr(exc, 'pos', '?')})")
        sent = _json_columns(payload)
    elif content_type in CSV_TYPES:
        try:
            sent = next(csv.reader(io.StringIO(body.decode("utf-8", errors="strict"))), [])
        except UnicodeDecodeError:
            return _bad("the CSV body is not UTF-8")
    else:
        return None  # MLflow answers 415 for content types it does not take
    if columns is None or sent is None:
        return None
    missing = [c for c in columns if c not in sent]
    extra = [c for c in sent if c not in columns]
    if missing:
        return _bad(f"missing column(s) {_names(missing)}; the model takes {_names(columns)}")
    if extra and strict:
        return _bad(f"unexpected column(s) {_names(extra)}; the model takes {_names(columns)}")
    return None


def _json_columns(payload: object) -> list[str] | None:
    """The column names a JSON payload sends, when it names them; None for positional rows."""
    if not isinstance(payload, dict):
        return None
    if isinstance(split := payload.get("dataframe_split"), dict) and isinstance(split.get("columns"), list):
        return [str(c) for c in split["columns"]]
    rows = payload.get("dataframe_records")
    if rows is None:
        rows = next((payload[key] for key in NAMED_ROW_KEYS if key in payload), None)
    if isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows):
        return list(dict.fromkeys(str(key) for row in rows for key in row))
    if isinstance(rows, dict):  # inputs as {column: values}
        return [str(key) for key in rows]
    return None


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n[:64]) for n in names[:MAX_NAMES_SHOWN])
    return shown + (f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else "")


def _bad(message: str) -> Rejection:
    return Rejection(400, "BAD_REQUEST", message)
