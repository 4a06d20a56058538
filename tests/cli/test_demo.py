"""`mlplatform demo` end to end, as a user runs it: a real process, a real `mlflow models serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlplatform import runner
from mlplatform.cli.demo import run_demo
from mlplatform.definitions import build_definitions
from mlplatform.settings import Settings

from conftest import PLATFORM_VARIABLES, REPO_ROOT

MLPLATFORM = str(Path(sys.executable).parent / "mlplatform")


def _demo(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    return subprocess.run(
        [MLPLATFORM, "demo", "--home", str(home), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_demo_twice_serves_production_and_keeps_it(tmp_path):
    first = _demo(tmp_path / "home", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert summary["dataset"]["name"] == "iris" and summary["dataset"]["rows"] == 150
    assert summary["predictions"]["rows_written"] == summary["dataset"]["rows"]
    assert summary["serving"]["invocation_ok"] is True and summary["serving"]["url"].startswith("http://127.0.0.1:")
    assert (summary["model"]["candidate_version"], summary["model"]["production_version"]) == (1, 1)
    assert summary["model"]["metric"] == "accuracy" and summary["model"]["value"] >= 0.9
    for key in ("production_score", "candidate_score", "drifted_features"):
        assert key in summary["monitoring"]
    assert set(summary["seconds"]) >= {"load", "train", "predict", "monitor", "serve", "total"}
    assert "[5/5]" in first.stderr

    second = _demo(tmp_path / "home", "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads(second.stdout)
    assert again["dataset"]["version"] == 1 and again["dataset"]["new_version"] is False
    assert again["model"]["candidate_version"] == 2 and again["model"]["production_version"] == 1
    assert again["model"]["promoted"] is False and "does not beat" in again["model"]["decision"]
    assert again["serving"]["version"] == 1 and again["serving"]["invocation_ok"] is True


def test_a_step_failing_beside_the_starting_server_fails_the_demo_and_stops_the_server(
    tmp_path, clean_environment, monkeypatch
):
    """Production is served from the end of training on, beside batch inference and monitoring: when monitoring
    fails once the server answers, the demo fails with monitoring's error and nothing is left serving."""
    home = tmp_path / "home"
    backend = build_definitions(Settings.load(home), environ={}).resources["serving"].open()
    real_run_job, seen = runner.run_job, []

    def run_job(defs, instance, job_name, *args, **kwargs):
        if job_name != "monitoring_job":
            return real_run_job(defs, instance, job_name, *args, **kwargs)
        deadline = time.monotonic() + 120
        while not backend.state.read() and time.monotonic() < deadline:
            time.sleep(0.2)
        seen.extend(backend.state.read().values())
        raise RuntimeError("monitoring broke")

    monkeypatch.setattr(runner, "run_job", run_job)
    with pytest.raises(RuntimeError, match="monitoring broke"):
        run_demo(str(home), "iris", None)
    assert [(r.model, r.alias) for r in seen] == [("mlplatform_iris", "Production")]
    assert backend.state.read() == {}
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{seen[0].address}/ping", timeout=5)


def test_demo_prints_a_summary_table(tmp_path):
    result = _demo(tmp_path / "home", "--dataset", "wine")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| production" in result.stdout and "/invocations OK" in result.stdout
    assert "mlplatform_wine" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "no_such_thing"], "is neither a built-in"),
        (["--dataset", "{csv}"], "needs a target column: pass --target COLUMN"),
        (["--dataset", "{csv}", "--target", "nope"], "has no target column 'nope'"),
    ],
)
def test_demo_rejects_bad_datasets_before_running(tmp_path, args, message):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n1,2,x\n3,4,y\n")
    result = _demo(tmp_path / "home", *[a.replace("{csv}", str(csv)) for a in args])
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "home" / "app.db").exists() or "ds_" not in (
        tmp_path / "home" / "app.db"
    ).read_bytes().decode(errors="ignore")


def test_stdlib_platform_is_not_shadowed_from_the_repository_root():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()
    result = subprocess.run(
        [sys.executable, "-c", "import platform, pandas, mlflow, dagster; print(platform.system())"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Linux"
