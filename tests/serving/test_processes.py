"""Stopping a process group stops all of it: a process that outlives the group's leader (as ``dagster dev``'s run
processes do, for a moment) has ended too when ``stop_group`` returns."""

from __future__ import annotations

import signal
import sys
import time

from mlplatform.serving.processes import group_members, spawn, stop_group

LEADER = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])  # same process group
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
"""
LATE_CHILD = """
import pathlib, signal, sys, time
def finish(*_):
    time.sleep(1.0)  # still working after its leader is gone
    pathlib.Path(sys.argv[1]).write_text("finished")
    sys.exit(0)
signal.signal(signal.SIGTERM, finish)
pathlib.Path(sys.argv[1] + ".started").write_text("")
time.sleep(60)
"""


def test_stop_group_waits_for_every_process_of_the_group_not_only_its_leader(tmp_path):
    marker = tmp_path / "child"
    leader = spawn([sys.executable, "-c", LEADER, LATE_CHILD, str(marker)], tmp_path / "group.log", {})
    deadline = time.monotonic() + 30
    while not (tmp_path / "child.started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_members(leader.pid)) == 2, (tmp_path / "group.log").read_text()
    stop_group(leader.pid, signal.SIGTERM, timeout_s=20)
    assert marker.read_text() == "finished"  # the child's last act, a second after its leader exited
    assert group_members(leader.pid) == []
    leader.wait(timeout=5)


def test_what_ignores_the_signal_is_killed_after_the_timeout(tmp_path):
    ready = tmp_path / "ready"
    stubborn = "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    stubborn += "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    process = spawn([sys.executable, "-c", stubborn, str(ready)], tmp_path / "stubborn.log", {})
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    stop_group(process.pid, signal.SIGTERM, timeout_s=1)
    assert process.wait(timeout=5) == -signal.SIGKILL
    assert time.monotonic() - started < 5
