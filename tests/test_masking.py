"""``mask``: the one way the platform shows a text that may hold a credential."""

from __future__ import annotations

import pytest

from mlplatform.masking import CredentialsMasked, mask, masked


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:s3cr3t@db:5432/app failed", "postgresql://app:***@db:5432/app failed"),
        ("postgresql+psycopg://app:p%40ss@db/app", "postgresql+psycopg://app:***@db/app"),
        ("'http://user:tok3n@127.0.0.1:5000/api/2.0/x'", "'http://user:***@127.0.0.1:5000/api/2.0/x'"),
        ("host=db user=app password=s3cr3t dbname=app", "host=db user=app password=*** dbname=app"),
        ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/postgres"),
        ("http://127.0.0.1:5000/api/2.0/mlflow/runs/get", "http://127.0.0.1:5000/api/2.0/mlflow/runs/get"),
    ],
)
def test_a_url_or_conninfo_password_is_masked_and_nothing_else(text, shown):
    assert mask(text, environ={}) == shown


def test_the_secret_variables_are_masked_wherever_they_appear():
    environ = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "APP_DB_URI": "postgresql://app:p%40ssw0rd@db/app"}
    text = "signature for wJalrXUtnFEMI did not match; password p@ssw0rd or p%40ssw0rd rejected"
    assert mask(text, environ) == "signature for *** did not match; password *** or *** rejected"


def test_an_error_chain_holding_a_credential_is_replaced_and_not_chained():
    try:
        try:
            raise OSError("cannot reach postgresql://app:s3cr3t@db/app")
        except OSError as exc:
            raise RuntimeError("store failed") from exc
    except RuntimeError as exc:
        clean = masked(exc)
    assert isinstance(clean, CredentialsMasked) and clean.__cause__ is None
    assert str(clean) == "RuntimeError: store failed\ncaused by OSError: cannot reach postgresql://app:***@db/app"
    harmless = ValueError("no credential here")
    assert masked(harmless) is harmless
