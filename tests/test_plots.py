"""Figures and tables for the UIs: real PNGs from the Agg canvas, typed Dagster tables."""

from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
from dagster import TableMetadataValue

from mlplatform.plots import (
    MAX_DRIFT_PANELS,
    drift_histograms,
    figure_png,
    frame_table,
    markdown_image,
    validation_figure,
    validation_plot_path,
)
from mlplatform.quality.drift import feature_drift

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_drift_histograms_one_panel_per_feature_with_the_drifted_one_flagged():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 500), "b": rng.normal(5, 1, 500)})
    current = pd.DataFrame({"a": rng.normal(0, 1, 500), "b": rng.normal(8, 1, 500)})
    drift = feature_drift(reference, current, ["a", "b"])
    figure = drift_histograms(reference, current, drift)
    visible = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title().splitlines()[0] for axes in visible] == ["a", "b"]
    assert "DRIFT" in visible[1].get_title() and "DRIFT" not in visible[0].get_title()
    width, height = _png_size(figure_png(figure))
    assert width > 300 and height > 150


def test_wide_datasets_show_the_features_with_the_highest_psi():
    rng = np.random.default_rng(1)
    columns = [f"f{i:02d}" for i in range(30)]
    reference = pd.DataFrame(rng.normal(0, 1, (300, 30)), columns=columns)
    current = reference + np.linspace(0, 3, 30)  # the later the feature, the larger the shift
    drift = feature_drift(reference, current, columns)
    figure = drift_histograms(reference, current, drift)
    titles = [axes.get_title().splitlines()[0] for axes in figure.axes if axes.get_visible()]
    assert len(titles) == MAX_DRIFT_PANELS and set(titles) == set(drift.nlargest(MAX_DRIFT_PANELS, "psi")["feature"])
    assert "f00" not in titles and "f29" in titles
    assert f"top {MAX_DRIFT_PANELS} of 30" in figure.get_suptitle()


def test_validation_figures_for_both_task_types():
    classes = validation_figure("classification", ["x", "y", "y", "z"], ["x", "y", "z", "z"], "confusion")
    assert validation_plot_path("classification") == "plots/confusion_matrix.png"
    assert [t.get_text() for t in classes.axes[0].get_xticklabels()] == ["x", "y", "z"]
    values = validation_figure("regression", [1.0, 2.0, 3.0], [1.1, 1.9, 3.2], "scatter")
    assert validation_plot_path("regression") == "plots/predicted_vs_actual.png"
    for figure in (classes, values):
        _png_size(figure_png(figure))


def test_markdown_image_is_a_data_uri_of_the_png():
    png = figure_png(validation_figure("regression", [1.0, 2.0], [1.0, 2.5], "t"))
    text = markdown_image(png, "a plot").value
    assert text.startswith("![a plot](data:image/png;base64,") and text.endswith(")")
    assert base64.b64decode(text[len("![a plot](data:image/png;base64,") : -1]) == png


def test_frame_table_keeps_types_rounds_floats_and_blanks_non_finite_numbers():
    frame = pd.DataFrame(
        {
            "feature": ["a", "b"],
            "rows": [3, 4],
            "psi": [0.123456789, math.inf],
            "drifted": [True, False],
            "score": [None, 0.5],
        }
    )
    table = frame_table(frame)
    assert isinstance(table, TableMetadataValue)
    assert [(c.name, c.type) for c in table.schema.columns] == [
        ("feature", "string"),
        ("rows", "int"),
        ("psi", "float"),
        ("drifted", "bool"),
        ("score", "float"),
    ]
    assert [r.data for r in table.records] == [
        {"feature": "a", "rows": 3, "psi": 0.1235, "drifted": True, "score": None},
        {"feature": "b", "rows": 4, "psi": None, "drifted": False, "score": 0.5},
    ]
