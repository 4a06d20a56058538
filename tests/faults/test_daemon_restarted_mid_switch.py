"""Dagster's daemon killed (SIGKILL) while the serving run of an alias change is executing, then started again:
the switch completes, the old version is unloaded from the scoring process, no second one is left behind, and the alias
history records the change."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dagster import DagsterRunStatus, RunsFilter

from mlplatform.aliases import move_alias
from mlplatform.appdb.alias_history import history
from mlplatform.serving.processes import BIN, base_environment, spawn, stop_group
from mlplatform.serving.reconcile import stop_all

from conftest import Lifecycle, embedded_settings
from sensor_world import World

DATASET, MODEL = "iris", "daemonfault_iris"


def _daemon(settings, log: Path, cwd: Path) -> subprocess.Popen:
    """`dagster-daemon run` of the installed code location (the sensor, the run queue, run workers), no webserver."""
    env = settings.child_environment(base_environment())
    return spawn([str(BIN / "dagster-daemon"), "run", "-m", "mlplatform.definitions"], log, env, cwd=cwd)


def _wait_for(condition: Callable[[], object], what: str, log: Path, timeout_s: float = 420) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout_s} s; daemon log:\n{log.read_text()[-4000:]}")


def _scoring_servers(folder: Path) -> Counter:
    """Versions of MODEL loaded in running scoring processes of the serving home (those working in ``folder``),
    per version: a version loaded twice, or left loaded, shows."""
    found: Counter = Counter()
    for process in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            argv = (process / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "mlplatform.serving.scoring_server" in argv and (process / "cwd").resolve() == folder:
                port = argv[argv.index("--port") + 1]
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/models", timeout=10) as response:
                    models = json.loads(response.read())["models"]
                found.update(str(m["version"]) for m in models if m["model"] == MODEL)
    return found


def test_a_daemon_killed_mid_switch_and_restarted_completes_the_switch(tmp_path, migrated_mlflow_store):
    settings = embedded_settings(
        tmp_path / "home", migrated_mlflow_store, MLFLOW_MODEL_NAME="daemonfault", MLPLATFORM_SCHEDULER="airflow"
    )
    lifecycle, log, daemons = Lifecycle(settings), tmp_path / "daemon.log", []
    try:
        lifecycle.load(DATASET)
        lifecycle.run("training_job", DATASET)  # v1: Production
        world = World(lifecycle, MODEL)
        v1 = world.registry.version(MODEL, 1)
        world.registry.register(v1.source, v1.run_id, MODEL, dict(v1.tags))  # v2
        daemons.append(_daemon(settings, log, tmp_path))

        def serving(version: int) -> bool:
            return [(s["version"], s["healthy"]) for s in world.status()] == [(version, True)]

        _wait_for(lambda: serving(1), "the daemon did not serve v1", log)
        move_alias(world.registry, lifecycle.engine, MODEL, "Production", 2, "test", "release v2")
        switch = RunsFilter(job_name="serving_job", tags={"mlplatform/version": "2"})

        def switching() -> bool:
            return any(r.status == DagsterRunStatus.STARTED for r in lifecycle.instance.get_runs(filters=switch))

        _wait_for(switching, "no serving run for v2 started", log)
        os.kill(daemons[0].pid, signal.SIGKILL)  # the daemon process, as a crash or `kill -9` takes it
        daemons[0].wait()
        daemons.append(_daemon(settings, log, tmp_path))

        _wait_for(lambda: serving(2), "the switch to v2 did not complete", log)
        scoring = settings.home / "serving" / "scoring"
        _wait_for(lambda: _scoring_servers(scoring) == Counter({"2": 1}), "a scoring server was left behind", log)

        def switched() -> bool:
            runs = lifecycle.instance.get_runs(filters=switch)
            return bool(runs) and all(r.status == DagsterRunStatus.SUCCESS for r in runs)

        _wait_for(switched, "the serving run of the switch did not succeed", log)
        [server] = world.status()
        assert world.invoke(server["url"], world.sample_payload())[0] == "2"
        changes = [(c["from_version"], c["to_version"]) for c in history(lifecycle.engine, MODEL, "Production")]
        assert changes[-1] == (1, 2)
    finally:
        for daemon in daemons:
            stop_group(daemon.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):  # what the killed daemon started (its code server)
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        stop_all(lifecycle.serving())
        lifecycle.instance.dispose()
