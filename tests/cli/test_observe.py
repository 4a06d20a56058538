"""`mlplatform observe` without the Debian binaries: exit 1 with the install hint, nothing started."""

from __future__ import annotations

import subprocess
import sys


def test_observe_without_prometheus_names_the_packages(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform.cli.main", "observe", "--json"],
        env={"PATH": str(tmp_path), "MLPLATFORM_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "prometheus is not installed" in result.stderr
    assert "apt-get install prometheus prometheus-blackbox-exporter" in result.stderr
    assert not (tmp_path / "home" / "observe").exists()
