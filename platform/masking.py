"""Credentials out of every message that reaches Dagster (run failures, logs, sensor skips) or a user's terminal.

``mask`` is the one way to show a text that may hold a store's URL or a secret: a URL's password becomes ``***``
(``postgresql://app:***@db/app``), so does a libpq ``password=...``, and so does any value of the secret variables
(S3 keys, the passwords inside the stores' URLs) wherever it appears. ``masks_credentials`` applies it to whatever
an asset or op raises, before Dagster records it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar
from urllib.parse import unquote, urlsplit

F = TypeVar("F", bound=Callable)

HIDDEN = "***"
# scheme://user:password@ -> scheme://user:***@ (the password ends at the last '@' before the host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@'\"]*:)[^\s'\"]*@")
_CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
URL_VARIABLES = ("APP_DB_URI", "MLFLOW_TRACKING_URI", "MLFLOW_POSTGRES_URI", "DAGSTER_POSTGRES_URL")
_SHORTEST_SECRET = 4  # shorter values would mask ordinary words


def mask(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every credential replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{HIDDEN}@", text)
    text = _CONNINFO_PASSWORD.sub(lambda m: f"{m['head']}{HIDDEN}", text)
    for secret in _secrets(os.environ if environ is None else environ):
        text = text.replace(secret, HIDDEN)
    return text


def _secrets(environ: Mapping[str, str]) -> Iterator[str]:
    for name in SECRET_VARIABLES:
        if len(value := environ.get(name, "")) >= _SHORTEST_SECRET:
            yield value
    for name in URL_VARIABLES:
        try:
            password = urlsplit(environ.get(name, "")).password
        except ValueError:  # not a URL: nothing to take from it
            continue
        if password and len(password) >= _SHORTEST_SECRET:
            yield from {password, unquote(password)}


class CredentialsMasked(RuntimeError):
    """An error whose text held a credential, re-raised with the credential masked (the original is dropped)."""


def masked(exc: BaseException) -> BaseException:
    """``exc`` itself when no text in its chain (causes and contexts) holds a credential, else a ``CredentialsMasked``
    naming each exception of the chain with its masked text (and not chained to the original)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if all(mask(str(e)) == str(e) for e in chain):
        return exc
    return CredentialsMasked("\ncaused by ".join(f"{type(e).__name__}: {mask(str(e))}" for e in chain))


def masks_credentials(fn: F) -> F:
    """Decorator for asset and op bodies: what they raise reaches Dagster with its credentials masked."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if (clean := masked(exc)) is exc:
                raise
            raise clean from None

    return wrapper  # type: ignore[return-value]
