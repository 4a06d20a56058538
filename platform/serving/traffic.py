"""How a production gateway splits its traffic: a canary weight (a share of requests answered by another alias's
server) and a shadow share (a share of requests also sent to another alias's server, whose answers are only
compared). Both live in ``traffic.json`` beside the gateway's ``upstream.json``, written atomically and re-read by
the gateway when it changes, so a weight changes without a restart; every change is recorded in the alias history.

The other alias's server is named, not its address: the gateway follows that server's own ``upstream.json``, so a
switch of the challenger's version is followed too, and the files stay inside the serving state folder, whatever
backend runs the processes.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from mlplatform.appdb.alias_history import latest_change, record_change
from mlplatform.serving.naming import server_name
from mlplatform.serving.state import ServingState
from mlplatform.serving.state import _write_atomically as write_json_atomically

KINDS = {"canary": "weight", "shadow": "share"}  # what the CLI calls the percentage of each
CLIENT_KEY_HEADER = "X-Client-Key"
_BUCKETS = 10_000


class TrafficError(ValueError):
    """A split that cannot be set; the message names the problem."""


@dataclass(frozen=True)
class Split:
    alias: str
    server: str  # the serving state folder's name of the other alias's server
    percent: float


def traffic_file(upstream_file: Path) -> Path:
    return upstream_file.with_name("traffic.json")


def read_splits(path: Path) -> dict[str, Split]:
    """The splits in force; a missing file means none. Raises ``OSError``/``ValueError`` on a damaged one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {kind: Split(**data[kind]) for kind in KINDS if kind in data}


def goes_to_canary(client_key: str | None, percent: float) -> bool:
    """Whether a request is answered by the canary. With a client key the answer is a hash of the key, so the same
    key always gets the same side for a given weight (and keeps the canary side when the weight grows); without
    one it is drawn at random."""
    if percent <= 0:
        return False
    if client_key is None:
        return random.random() * 100 < percent
    bucket = int.from_bytes(hashlib.sha256(client_key.encode()).digest()[:8], "big") % _BUCKETS
    return bucket < percent * _BUCKETS / 100


def set_split(
    state: ServingState,
    engine: Engine,
    model: str,
    production_alias: str,
    kind: str,
    alias: str,
    percent: float,
    actor: str,
) -> str:
    """Set the canary weight or shadow share of ``model@production_alias`` towards ``model@alias`` (0 stops it),
    record the change in the alias history, and say what changed."""
    word = KINDS[kind]
    if not 0 <= percent <= 100:
        raise TrafficError(f"the {kind} {word} must be between 0 and 100 (percent of requests), not {percent:g}")
    if alias == production_alias:
        raise TrafficError(f"the {kind} alias must differ from {production_alias}, which answers the rest")
    with state.locked() as records:
        production = records.get(server_name(model, production_alias))
        if production is None or production.upstream is None:
            raise TrafficError(f"no server for {model}@{production_alias}: nothing to split")
        other = records.get(server_name(model, alias))
        if percent > 0 and (other is None or other.upstream is None):
            raise TrafficError(f"no server for {model}@{alias}: serve it first (add {alias} to MLFLOW_SERVE_ALIASES)")
        path = traffic_file(state.upstream_file(production.name))
        try:
            splits = read_splits(path)
        except (OSError, ValueError, TypeError) as exc:
            raise TrafficError(f"{path} cannot be read ({exc}): fix or remove it, then set the split again") from None
        before = splits[kind].percent if kind in splits else 0
        if percent > 0:
            splits[kind] = Split(alias, server_name(model, alias), percent)
        else:
            splits.pop(kind, None)
        write_json_atomically(path, {k: vars(s) for k, s in splits.items()})
    if other is not None and other.upstream is not None:
        version: int | None = other.upstream.version
    else:  # the history's own last version, so that the entry does not read as an alias move
        latest = latest_change(engine, model, alias)
        version = latest["to_version"] if latest else None
    change = f"{kind} {word} {percent:g}% of {model}@{production_alias} (was {before:g}%)"
    record_change(engine, model, alias, version, version, actor, change)
    return f"{model}@{alias}: {change}"
