"""Shadow traffic at a production gateway: a share of live invocations also goes to the challenger's server,
compared in the background; production alone answers. The pairs become metrics and, through the gateway's record
file, app-db rows (each once) that the monitoring report summarises."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from mlplatform.appdb.shadow_pairs import ingest_shadow_pairs, shadow_summary
from mlplatform.resources.build import build_resources
from mlplatform.serving.processes import alive
from mlplatform.serving.shadow import QUEUE_SIZE, WORKERS
from mlplatform.serving.shadow_sender import NICE

from split_world import CHALLENGER, MODEL, Client, Scorer, SplitWorld, serve


def shadow(settings, share: int) -> None:
    code, message = serve(settings, "shadow", "--alias", CHALLENGER, "--share", str(share))
    assert code == 0, message


def pairs(world: SplitWorld, outcome: str) -> float:
    return _counter(world, "mlflow_serve_shadow_pairs_total", f'outcome="{outcome}"')


def _counter(world: SplitWorld, name: str, label: str) -> float:
    found = re.search(rf"{name}{{[^}}]*{label}[^}}]*}} (\S+)", world.metrics())
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def production():
    scorer = Scorer(lambda x: 0)
    yield scorer
    scorer.stop()


def test_shadow_pairs_reach_metrics_and_app_db_once_while_production_alone_answers(platform_home, production):
    challenger = Scorer(lambda x: x % 2)  # agrees with production on even x only
    world = SplitWorld(platform_home, production, challenger.url)
    try:
        shadow(platform_home, 100)
        world.wait_splits({"shadow": 100})
        client = Client(world.address)
        assert [client.invoke(x) for x in range(20)] == [("Production", "1", 0)] * 20
        SplitWorld._wait(lambda: pairs(world, "agree") + pairs(world, "disagree") == 20, "20 compared pairs")
        assert (pairs(world, "agree"), pairs(world, "disagree"), pairs(world, "error")) == (10, 10, 0)
        assert (
            'mlflow_serve_shadow_duration_seconds_count{alias="Production",model="m",role="shadow",version="2"} 20.0'
            in world.metrics()
        )
    finally:
        world.close()
        challenger.stop()
    engine = build_resources(platform_home, environ={})["app_db"].engine
    assert ingest_shadow_pairs(engine, world.backend.state.folder) == 20
    assert ingest_shadow_pairs(engine, world.backend.state.folder) == 0  # each record once
    summary = shadow_summary(engine, MODEL)
    assert summary["shadow_pairs"] == 20 and summary["shadow_errors"] == 0
    assert summary["shadow_agreement_rate"] == 0.5
    assert summary["shadow_production_p50_ms"] > 0 and summary["shadow_p50_ms"] > 0


def test_a_shadow_alias_on_production_s_own_version_is_not_mirrored(platform_home, production):
    challenger = Scorer(lambda x: 0)
    world = SplitWorld(platform_home, production, challenger.url, challenger_version=1)
    try:
        shadow(platform_home, 100)
        world.wait_splits({"shadow": 100})
        client = Client(world.address)
        assert [client.invoke(x) for x in range(10)] == [("Production", "1", 0)] * 10
        time.sleep(1)  # pairs, had any been handed over, are reported within 0.25 s
        assert pairs(world, "agree") + pairs(world, "disagree") + pairs(world, "error") == 0
        assert senders(int(world.handle.split(":")[0])) == []  # no sender was needed
        assert challenger.invocations == 0
    finally:
        world.close()
        challenger.stop()


def test_a_dead_challenger_leaves_production_answers_whole_and_is_counted_as_errors(platform_home, production):
    challenger = Scorer(lambda x: 0)
    challenger.stop()  # its address now refuses connections
    world = SplitWorld(platform_home, production, challenger.url)
    try:
        shadow(platform_home, 100)
        world.wait_splits({"shadow": 100})
        client = Client(world.address)
        assert [client.invoke(x) for x in range(10)] == [("Production", "1", 0)] * 10
        SplitWorld._wait(lambda: pairs(world, "error") == 10, "10 shadow errors")
        assert (
            'mlflow_serve_request_errors_total{alias="Production",endpoint="invocations",model="m",version="1"} 0.0'
            in world.metrics()
        )
    finally:
        world.close()
    engine = build_resources(platform_home, environ={})["app_db"].engine
    assert ingest_shadow_pairs(engine, world.backend.state.folder) == 10
    summary = shadow_summary(engine, MODEL)
    assert (summary["shadow_pairs"], summary["shadow_errors"], summary["shadow_agreement_rate"]) == (10, 10, None)


def test_a_slow_challenger_fills_the_bounded_queue_and_the_rest_is_dropped_and_counted(platform_home, production):
    challenger = Scorer(lambda x: 0, delay_s=20)  # holds the workers far longer than the test sends
    world = SplitWorld(platform_home, production, challenger.url)
    try:
        shadow(platform_home, 100)
        world.wait_splits({"shadow": 100})
        client = Client(world.address)
        sent = QUEUE_SIZE + WORKERS + 40
        assert [client.invoke(x) for x in range(sent)] == [("Production", "1", 0)] * sent
        expected = sent - QUEUE_SIZE - WORKERS  # counted as the sender reports them
        dropped = lambda: _counter(world, "mlflow_serve_shadow_dropped_total", 'reason="queue_full"')  # noqa: E731
        SplitWorld._wait(lambda: dropped() >= expected, f"{expected} dropped pairs")
        assert dropped() == expected
    finally:
        world.close()
        challenger.stop()


def test_pairs_a_dying_sender_held_are_counted_as_dropped(platform_home, production):
    challenger = Scorer(lambda x: 0, delay_s=20)  # the pairs wait in the sender, none compared before it dies
    world = SplitWorld(platform_home, production, challenger.url)
    ended = lambda: _counter(world, "mlflow_serve_shadow_dropped_total", 'reason="sender_ended"')  # noqa: E731
    try:
        shadow(platform_home, 100)
        world.wait_splits({"shadow": 100})
        client = Client(world.address)
        assert [client.invoke(x) for x in range(10)] == [("Production", "1", 0)] * 10
        gateway_pid = int(world.handle.split(":")[0])
        SplitWorld._wait(lambda: len(senders(gateway_pid)) == 1, "the shadow sender")
        assert ended() == 0
        time.sleep(1)  # the ten hand-overs follow the answers on the gateway's loop
        os.kill(senders(gateway_pid)[0], signal.SIGKILL)
        SplitWorld._wait(lambda: ended() == 10, "10 pairs counted as dropped with the sender")
        assert pairs(world, "agree") + pairs(world, "error") == 0
    finally:
        world.close()
        challenger.stop()


def senders(gateway_pid: int) -> list[int]:
    """The gateway's shadow sender processes (its children running ``mlplatform.serving.shadow_sender``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if parent == gateway_pid and b"mlplatform.serving.shadow_sender" in command:
            found.append(int(stat.parent.name))
    return found


def test_pairs_are_sent_by_a_lower_priority_process_restarted_if_it_dies_and_ending_with_the_gateway(
    platform_home, production
):
    challenger = Scorer(lambda x: 0)
    world = SplitWorld(platform_home, production, challenger.url)
    gateway_pid = int(world.handle.split(":")[0])
    try:
        assert senders(gateway_pid) == []  # started only once shadowing is needed
        shadow(platform_home, 100)
        world.wait_splits({"shadow": 100})
        client = Client(world.address)
        assert [client.invoke(x) for x in range(5)] == [("Production", "1", 0)] * 5
        SplitWorld._wait(lambda: pairs(world, "agree") == 5, "5 compared pairs")
        [sender] = senders(gateway_pid)
        assert os.getpriority(os.PRIO_PROCESS, sender) == os.getpriority(os.PRIO_PROCESS, gateway_pid) + NICE
        os.kill(sender, signal.SIGKILL)
        SplitWorld._wait(lambda: senders(gateway_pid) not in ([], [sender]), "a new sender")
        assert [client.invoke(x) for x in range(5)] == [("Production", "1", 0)] * 5
        SplitWorld._wait(lambda: pairs(world, "agree") == 10, "5 more compared pairs, by the new sender")
        [restarted] = senders(gateway_pid)
        os.kill(gateway_pid, signal.SIGKILL)  # the gateway alone, with no time to end anything: the pipe ends
        SplitWorld._wait(lambda: not alive(restarted), "the sender to exit with the gateway", timeout_s=10)
    finally:
        world.close()
        challenger.stop()
