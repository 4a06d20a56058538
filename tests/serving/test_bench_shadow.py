"""``mlplatform bench shadow`` briefly, as a user runs it: both sides answered without a failed request, the shadow
pairs compared (the challenger is the same version, so every pair agrees). Its speed is the benchmark's business."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlplatform.settings import platform_variables


def test_bench_shadow_compares_pairs_and_reports_both_sides():
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform.cli.main", "bench", "shadow", "--seconds", "2", "--share", "50", "--json"],
        env={k: v for k, v in os.environ.items() if k not in platform_variables()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["seconds"], report["share"], report["concurrency"]) == (2, 50, 1)
    assert report["shadow_off_errors"] == report["shadow_on_errors"] == report["shadow_errors"] == 0
    assert report["shadow_off_requests"] > 0 and report["shadow_on_requests"] > 0
    assert report["shadow_pairs"] > 0 and report["shadow_agreement_rate"] == 1.0
    assert report["p50_added_ms"] == round(report["shadow_on_p50_ms"] - report["shadow_off_p50_ms"], 3)
