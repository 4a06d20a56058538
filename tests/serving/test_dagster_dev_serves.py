"""After `mlplatform demo`, `dagster dev -w workspace.yaml` serves Production with no manual step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import PLATFORM_VARIABLES, REPO_ROOT
from processes import dagster_dev

MLPLATFORM = str(Path(sys.executable).parent / "mlplatform")


def _status(env: dict) -> list[dict]:
    result = subprocess.run(
        [MLPLATFORM, "serve", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_sensor_serves_production_after_the_demo(tmp_path):
    home = tmp_path / "home"
    env = {**{k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}, "MLPLATFORM_HOME": str(home)}
    demo = subprocess.run([MLPLATFORM, "demo", "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert _status(env) == []  # the demo's own server is gone
    try:
        with dagster_dev(REPO_ROOT, tmp_path / "dagster-dev.log", env):
            deadline, status = time.monotonic() + 240, []
            while time.monotonic() < deadline and not (status and status[0]["healthy"]):
                time.sleep(2)
                status = _status(env)
            assert status and status[0]["healthy"], (tmp_path / "dagster-dev.log").read_text()[-4000:]
        [server] = status
        assert (server["model"], server["alias"], server["version"]) == ("mlplatform_iris", "Production", 1)
        assert server["url"].startswith("http://127.0.0.1:")
        assert _status(env)[0]["healthy"]  # servers outlive `dagster dev`: serving does not depend on it
    finally:
        subprocess.run([MLPLATFORM, "serve", "down"], env=env, capture_output=True, timeout=120)
    assert _status(env) == []
