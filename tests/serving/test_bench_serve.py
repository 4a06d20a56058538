"""``mlplatform bench serve`` briefly, as a user runs it: every documented key, no failed request through the
gateway or to the bare scoring server, shadow traffic's pairs compared (the challenger is a version of the same files,
so every pair agrees) with production answering on both sides, and no server left behind. Its speed is the benchmark's
business, not the test's: the figures are checked for being measured and consistent, not for their size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlplatform.settings import platform_variables

HOME_PREFIX = b"mlplatform-bench-serve-"
FIGURES = ("requests", "requests_per_s", "p50_ms", "p99_ms", "errors")
KEYS = {
    "seconds", "concurrency", "model", "version", *FIGURES, *(f"scoring_{key}" for key in FIGURES),
    *(f"bare_{key}" for key in FIGURES), "gateway_p50_overhead_ms", "rps_ratio", "models_served",
    "rss_mb_first_model", "rss_mb_per_model", "bare_rss_mb", "targets_met", "gateway_cpu_ms_per_request",
    "client_cpu_share", "first_errors", "shadow",
}  # fmt: skip
SHADOW_KEYS = {
    "seconds", "concurrency", "share", *(f"off_{key}" for key in FIGURES), *(f"on_{key}" for key in FIGURES),
    "off_gateway_cpu_ms_per_request", "on_gateway_cpu_ms_per_request", "p50_added_ms", "pairs", "errors",
    "dropped", "agreement_rate", "target_met", "rss_mb_challenger",
}  # fmt: skip


def _bench_processes() -> set[str]:
    """Processes whose command line or environment names a ``bench serve`` home: its gateway (upstream file) and
    scoring server (tracking store)."""
    found = set()
    for process in Path("/proc").iterdir():
        try:
            if (
                process.name.isdigit()
                and HOME_PREFIX in (process / "cmdline").read_bytes() + (process / "environ").read_bytes()
            ):
                found.add(process.name)
        except OSError:  # gone meanwhile
            continue
    return found


def test_bench_serve_reports_both_paths_and_shadow_traffic_without_errors_and_stops_its_servers():
    before = _bench_processes()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlplatform.cli.main",
            "bench",
            "serve",
            "--seconds",
            "2",
            "--concurrency",
            "4",
            "--share",
            "50",
            "--json",
        ],
        env={k: v for k, v in os.environ.items() if k not in platform_variables()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert set(report) == KEYS
    assert (report["seconds"], report["concurrency"], report["version"]) == (2, 4, 1)
    assert report["errors"] == report["scoring_errors"] == report["bare_errors"] == 0 and report["first_errors"] == {}
    assert report["requests"] > 0 and report["scoring_requests"] > 0 and report["bare_requests"] > 0
    assert report["models_served"] == 3 and 0 < report["rss_mb_per_model"] < report["rss_mb_first_model"]
    assert report["p50_ms"] <= report["p99_ms"] and report["bare_p50_ms"] <= report["bare_p99_ms"]
    shadow = report["shadow"]
    assert set(shadow) == SHADOW_KEYS
    assert (shadow["seconds"], shadow["concurrency"], shadow["share"]) == (2, 1, 50)
    assert shadow["off_errors"] == shadow["on_errors"] == shadow["errors"] == 0
    assert shadow["off_requests"] > 0 and shadow["on_requests"] > 0
    assert shadow["pairs"] > 0 and shadow["agreement_rate"] == 1.0
    assert shadow["off_p50_ms"] <= shadow["off_p99_ms"] and shadow["on_p50_ms"] <= shadow["on_p99_ms"]
    assert shadow["p50_added_ms"] == round(shadow["on_p50_ms"] - shadow["off_p50_ms"], 3)
    assert shadow["rss_mb_challenger"] > 0
    assert 0 < shadow["off_gateway_cpu_ms_per_request"] and 0 < shadow["on_gateway_cpu_ms_per_request"]
    assert shadow["target_met"] or not report["targets_met"]
    assert _bench_processes() <= before
