"""Canary weights at a production gateway: set with ``mlplatform serve canary``, followed without a restart,
sticky per client key, recorded in the alias history; bad requests name the problem."""

from __future__ import annotations

import pytest

from mlplatform.appdb.alias_history import history
from mlplatform.resources.build import build_resources
from mlplatform.serving.local_backend import LocalProcessBackend
from mlplatform.serving.naming import server_name
from mlplatform.serving.processes import running
from mlplatform.serving.state import ServerRecord, Upstream

from split_world import CHALLENGER, MODEL, Client, Scorer, SplitWorld, serve


@pytest.fixture
def world(platform_home):
    production, challenger = Scorer(lambda x: 0), Scorer(lambda x: 1)
    world = SplitWorld(platform_home, production, challenger.url)
    yield world
    world.close()
    production.stop()
    challenger.stop()


def canary(settings, *arguments: str) -> tuple[int, str]:
    return serve(settings, "canary", *arguments)


def test_a_canary_weight_splits_1000_client_keys_within_5_points_and_each_key_sticks(platform_home, world):
    assert canary(platform_home, "--alias", CHALLENGER, "--weight", "30")[0] == 0
    world.wait_splits({"canary": 30})
    client = Client(world.address)
    sides = {f"client-{i}": client.invoke(i, f"client-{i}") for i in range(1000)}
    assert set(sides.values()) == {("Production", "1", 0), (CHALLENGER, "2", 1)}  # the answer is the header's
    on_canary = {key for key, (alias, _, _) in sides.items() if alias == CHALLENGER}
    assert 250 <= len(on_canary) <= 350, len(on_canary)
    again = {key: client.invoke(0, key)[0] for key in list(sides)[:200]}
    assert {key for key, alias in again.items() if alias == CHALLENGER} == on_canary & set(again)
    assert canary(platform_home, "--alias", CHALLENGER, "--weight", "50")[0] == 0
    world.wait_splits({"canary": 50})
    assert all(client.invoke(0, key)[0] == CHALLENGER for key in sorted(on_canary)[:100])  # a larger weight keeps them


def test_weights_change_without_a_restart_and_are_recorded_in_the_alias_history(platform_home, world):
    client = Client(world.address)
    assert canary(platform_home, "--alias", CHALLENGER, "--weight", "100") == (
        0,
        f"{MODEL}@{CHALLENGER}: canary weight 100% of {MODEL}@Production (was 0%)",
    )
    world.wait_splits({"canary": 100})
    assert {client.invoke(x)[:2] for x in range(20)} == {(CHALLENGER, "2")}  # no key: drawn per request
    assert canary(platform_home, "--alias", CHALLENGER, "--weight", "0")[0] == 0
    world.wait_splits({})
    assert {client.invoke(x)[:2] for x in range(20)} == {("Production", "1")}
    assert running(world.handle)  # the same gateway process throughout
    engine = build_resources(platform_home, environ={})["app_db"].engine
    changes = history(engine, MODEL, CHALLENGER)
    assert [(c["from_version"], c["to_version"], c["reason"]) for c in changes] == [
        (2, 2, f"canary weight 100% of {MODEL}@Production (was 0%)"),
        (2, 2, f"canary weight 0% of {MODEL}@Production (was 100%)"),
    ]
    assert 'alias="challenger",endpoint="invocations",model="m",version="2"' in world.metrics()


def test_a_canary_without_a_challenger_server_or_out_of_range_is_refused_naming_the_problem(platform_home):
    state = LocalProcessBackend(
        platform_home.home, platform_home.mlflow_tracking_uri, None, platform_home.production_alias
    ).state
    with state.locked() as records:
        name = server_name(MODEL, "Production")
        records[name] = ServerRecord(name, MODEL, "Production", "", "", Upstream(1, "http://127.0.0.1:9", ""))
    code, message = canary(platform_home, "--alias", CHALLENGER, "--weight", "10")
    assert code == 1 and f"no server for {MODEL}@{CHALLENGER}" in message
    code, message = canary(platform_home, "--alias", CHALLENGER, "--weight", "101")
    assert code == 1 and "between 0 and 100" in message and "101" in message
    code, message = canary(platform_home, "--alias", "Production", "--weight", "10")
    assert code == 1 and "must differ from Production" in message
    traffic = state.folder / name / "traffic.json"
    assert not traffic.exists()
    traffic.parent.mkdir(parents=True)
    traffic.write_text('{"canary": {"alias": ')  # damaged by hand: kept, named
    code, message = canary(platform_home, "--alias", CHALLENGER, "--weight", "0")
    assert code == 1 and f"{traffic} cannot be read" in message
    assert traffic.read_text() == '{"canary": {"alias": '
    assert history(build_resources(platform_home, environ={})["app_db"].engine, MODEL) == []
