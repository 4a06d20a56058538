"""What the serving benchmarks share: a fresh embedded home in a temporary folder, the ``mlplatform`` command run
in it as a user runs it, and the body a client posts to ``/invocations`` (the model's own sample rows)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplatform.contract import load_sample_input
from mlplatform.resources.build import build_resources
from mlplatform.serving.processes import BIN
from mlplatform.serving.scoring_client import invocation_body
from mlplatform.settings import Settings, platform_variables


@contextmanager
def fresh_home(prefix: str) -> Iterator[tuple[Settings, dict[str, str], Path]]:
    """Settings of an embedded home in a new temporary folder, the environment ``mlplatform`` runs with there (this
    process's, without any platform variable of its own), and the folder; all removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"mlplatform-bench-{prefix}-") as folder:
        settings = Settings.from_mapping({"MLPLATFORM_HOME": str(Path(folder) / "home")})
        env = settings.child_environment({k: v for k, v in os.environ.items() if k not in platform_variables()})
        yield settings, env, Path(folder)


def cli(env: dict, *args: str) -> str:
    """``mlplatform <args>`` in ``env``; its stdout, or RuntimeError with the end of its stderr."""
    result = subprocess.run([str(BIN / "mlplatform"), *args], env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"mlplatform {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def sample_body(settings: Settings, model: str, version: int, rows: int = 1) -> bytes:
    """An ``/invocations`` body of the first ``rows`` rows of the version's ``data_contract/sample_input.csv``."""
    registry = build_resources(settings, environ={})["mlflow"].registry()
    return invocation_body(load_sample_input(registry, registry.version(model, version).run_id).head(rows))
