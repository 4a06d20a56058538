"""The numpy binary COPY codec against a real PostgreSQL: what goes in comes back exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from mlplatform.appdb import pgcopy

from postgres import fresh_database


@pytest.fixture(scope="module")
def conn(postgres_admin):
    with fresh_database(postgres_admin) as url, psycopg.connect(url) as connection:
        yield connection


def _copy_in(conn, table: str, payload: bytes) -> None:
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(pgcopy.HEADER + payload + pgcopy.TRAILER)
    conn.commit()


def test_mixed_rows_round_trip(conn):
    conn.execute(
        "CREATE TABLE mixed (id int8, score float8, label text, tag text, at timestamptz, "
        "probs float8[], names text[], missing float8, small int4)"
    )
    rows = 1000
    labels = np.array(["setosa", "", "versicolor", "ünïcødé", "x"])[np.arange(rows) % 5]
    probabilities = np.random.default_rng(0).random((rows, 3))
    at = datetime(2026, 11, 27, 5, 0, 0, 123456, tzinfo=UTC)
    columns = [
        ("int8", np.arange(rows, dtype=np.int64)),
        ("float8", np.linspace(-1e300, 1e300, rows)),
        ("text", labels),
        ("text", pgcopy.constant("text", "batch-7")),
        ("timestamptz", pgcopy.constant("timestamptz", at)),
        ("float8[]", probabilities),
        ("text[]", pgcopy.constant("text[]", ["a", "bb", ""])),
        ("float8", pgcopy.constant("float8", None)),
        ("int4", np.full(rows, -7, dtype=np.int32)),
    ]
    _copy_in(conn, "mixed", pgcopy.encode_rows(columns, rows))
    stored = conn.execute("SELECT * FROM mixed ORDER BY id").fetchall()
    assert len(stored) == rows
    for i, row in enumerate(stored):
        assert row[0] == i and row[1] == columns[1][1][i] and row[2] == labels[i]
        assert row[3:5] == ("batch-7", at)
        assert row[5] == probabilities[i].tolist() and row[6] == ["a", "bb", ""]
        assert row[7] is None and row[8] == -7


def test_decode_array_reads_array_send_output(conn):
    row = conn.execute(
        "SELECT array_send(array_agg(g::int8 ORDER BY g)), array_send(array_agg((g * 0.5)::float8 ORDER BY g)), "
        "array_send('{}'::float8[]) FROM generate_series(0, 99999) g",
        binary=True,
    ).fetchone()
    ids, halves = pgcopy.decode_array(row[0], "int8"), pgcopy.decode_array(row[1], "float8")
    assert ids.tolist() == list(range(100000)) and np.array_equal(halves, ids * 0.5)
    assert pgcopy.decode_array(row[2], "float8").size == 0


def test_decode_array_rejects_nulls(conn):
    [data] = conn.execute("SELECT array_send(ARRAY[1.0, NULL]::float8[])", binary=True).fetchone()
    with pytest.raises(ValueError, match="NULLs"):
        pgcopy.decode_array(data, "float8")


def test_unsupported_types_are_named():
    with pytest.raises(ValueError, match="unsupported COPY type 'json'"):
        pgcopy.constant("json", {})
    with pytest.raises(ValueError, match="unsupported per-row COPY type 'bool'"):
        pgcopy.encode_rows([("bool", np.array([True]))], 1)
