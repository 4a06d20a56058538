"""The serving state on disk and the processes it names: a damaged state file, and pids that are no longer ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlplatform.serving.local_backend import LocalProcessBackend
from mlplatform.serving.naming import server_name
from mlplatform.serving.processes import handle_of, running, stop
from mlplatform.serving.reconcile import stop_all
from mlplatform.serving.state import ServerRecord, ServingState, Upstream, prune_logs

SERVE = [sys.executable, "-m", "mlplatform.cli.main", "serve"]


def test_a_damaged_state_file_is_kept_aside_and_every_serve_command_still_works(platform_home):
    state = ServingState(platform_home.home / "serving")
    state.folder.mkdir(parents=True)
    state.file.write_text('{"mlflow-serve-iris-Production": {"name": ')  # cut mid-write
    env = platform_home.child_environment({"PATH": "/usr/bin:/bin"})
    for command in (["status", "--json"], ["down"]):
        result = subprocess.run([*SERVE, *command], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr and "serving_state_damaged" in result.stderr
    assert (state.folder / "servers.json.damaged").read_text().startswith('{"mlflow-serve-iris')


def test_a_pid_that_is_no_longer_ours_is_neither_alive_nor_stopped(platform_home):
    """After a reboot or a crash, the pid in servers.json may belong to an unrelated process: `serve down` must
    leave that process alone, and `serve status` must not take it for a live gateway."""
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ours = handle_of(stranger)
        pid, start = ours.split(":")
        reused = f"{pid}:{int(start) + 1}"  # same pid, another start: another process
        legacy = pid  # a plain pid, as earlier versions recorded
        assert running(ours) and not running(reused) and not running(legacy)
        backend = LocalProcessBackend(
            platform_home.home,
            platform_home.mlflow_tracking_uri,
            limits=None,
            production_alias=platform_home.production_alias,
        )
        with backend.state.locked() as records:
            upstream = Upstream(version=1, address="http://127.0.0.1:9", handle=reused)
            name = server_name("m", "Production")
            records[name] = ServerRecord(name, "m", "Production", "http://127.0.0.1:9", legacy, upstream)
        assert [o.action for o in stop_all(backend)] == ["stopped"]
        stop(reused)
        assert stranger.poll() is None, "an unrelated process was killed"
        assert backend.state.read() == {} and json.loads(backend.state.targets_file.read_text()) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_only_the_newest_scoring_logs_are_kept(platform_home):
    folder = platform_home.home / "serving" / "scoring"
    folder.mkdir(parents=True)
    for number in range(1, 9):
        (folder / f"server-1000{number}.log").write_text("started\n")
        os.utime(folder / f"server-1000{number}.log", (number, number))
    (folder / "process.json").write_text("{}")
    prune_logs(folder, "server-*.log", keep=3)
    assert sorted(p.name for p in folder.iterdir()) == [
        "process.json",
        "server-10006.log",
        "server-10007.log",
        "server-10008.log",
    ]
