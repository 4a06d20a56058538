"""A picture of a Grafana dashboard where Grafana cannot run: every Prometheus query of every panel, run over the
last minutes against a live Prometheus and drawn with matplotlib in the panel's order (time series as lines, other
panels as bars of the latest values). The README shows these pictures; they are made by test_model_quality_live.py.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  # after the backend is chosen

from observability_stack import REPO, Prometheus, all_panels, expand_grafana_variables, target_datasource_uid  # noqa: E402

PICTURES = REPO / "tests" / "monitoring" / "dashboards"
MAX_SERIES = 8


def pictures_folder() -> Path:
    folder = Path(os.environ.get("MLPLATFORM_SCREENSHOTS_DIR") or PICTURES)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _legend(template: str, labels: dict) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text.strip() or ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("job", "instance"))[:40]


def render_dashboard(board: dict, prometheus: Prometheus, variables: dict, path: Path, minutes: float = 10) -> int:
    """Draw ``board`` into ``path``; returns how many panels showed data."""
    panels = [
        p for p in sorted(all_panels(board), key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])) if p.get("targets")
    ]
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 5.2, rows * 3.0), squeeze=False)
    end = time.time()
    with_data = 0
    for axis, panel in zip(axes.flat, panels):
        axis.set_title(panel["title"], fontsize=9)
        axis.tick_params(labelsize=7)
        series = []
        for target in panel["targets"]:
            if target_datasource_uid(panel, target) != "prometheus":
                continue
            expr = expand_grafana_variables(target["expr"], variables, rate_interval="1m")
            data = prometheus.api("query_range", query=expr, start=end - minutes * 60, end=end, step="5s")
            series += [(_legend(target.get("legendFormat", ""), s["metric"]), s["values"]) for s in data["result"]]
        series = series[:MAX_SERIES]
        if not series:
            message = "Loki: not running here" if panel["datasource"]["uid"] == "loki" else "no data on loopback"
            axis.text(0.5, 0.5, message, ha="center", va="center", fontsize=8, color="grey", transform=axis.transAxes)
            axis.set_xticks([]), axis.set_yticks([])
            continue
        with_data += 1
        if panel["type"] == "timeseries":
            for label, values in series:
                axis.plot([(float(t) - end) / 60 for t, _ in values], [float(v) for _, v in values], label=label)
            axis.set_xlabel("minutes", fontsize=7)
            axis.legend(fontsize=6, loc="best")
        else:
            labels = [label for label, _ in series]
            bars = axis.barh(range(len(series)), [float(values[-1][1]) for _, values in series], color="tab:blue")
            axis.bar_label(bars, fmt="%.3g", fontsize=6)
            axis.set_yticks(range(len(series)), labels, fontsize=6)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(f"{board['title']} ({', '.join(f'{k}={v}' for k, v in variables.items())})", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return with_data
