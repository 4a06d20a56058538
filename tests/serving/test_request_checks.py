"""The gateway's checks of an invocation body against the model's columns (pure: no server)."""

from __future__ import annotations

import json

import pytest

from mlplatform.serving.request_checks import check_invocation

COLUMNS = ["a", "b"]


def _json(payload) -> bytes:
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "body",
    [
        _json({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}),
        _json({"dataframe_records": [{"a": 1, "b": 2}]}),
        _json({"instances": [{"a": 1, "b": 2}]}),
        _json({"inputs": {"a": [1], "b": [2]}}),
        _json({"inputs": [[1, 2]]}),  # positional: the scoring server checks the shape
    ],
)
def test_every_mlflow_payload_format_with_the_models_columns_passes(body):
    assert check_invocation(body, "application/json", COLUMNS, strict=True) is None


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/json", "the request body is empty"),
        (b"   ", "text/csv", "the request body is empty"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (_json({"dataframe_split": {"columns": ["a"], "data": [[1]]}}), "application/json", "missing column(s) 'b'"),
        (_json({"dataframe_records": [{"a": 1, "b": 2, "c": 3}]}), "application/json", "unexpected column(s) 'c'"),
        (b"a,b,c\n1,2,3\n", "text/csv", "unexpected column(s) 'c'"),
        (b"\xff\xfe", "text/csv", "not UTF-8"),
    ],
)
def test_bad_bodies_are_refused_with_a_message_naming_the_problem(body, content_type, message):
    rejection = check_invocation(body, content_type, COLUMNS, strict=True)
    assert rejection is not None and rejection.status == 400 and message in rejection.message


def test_a_bad_body_is_never_quoted_back():
    secret = "x" * 10_000 + "hunter2"
    rejection = check_invocation(("{" + secret).encode(), "application/json", COLUMNS, strict=True)
    assert rejection is not None and "hunter2" not in rejection.message and len(rejection.message) < 200


def test_extra_columns_pass_when_the_setting_relaxes_the_contract():
    body = _json({"dataframe_records": [{"a": 1, "b": 2, "c": 3}]})
    assert check_invocation(body, "application/json", COLUMNS, strict=False) is None


def test_unknown_columns_or_content_types_are_left_to_the_scoring_server():
    body = _json({"dataframe_records": [{"z": 1}]})
    assert check_invocation(body, "application/json", None, strict=True) is None
    assert check_invocation(b"hello", "text/plain", COLUMNS, strict=True) is None
