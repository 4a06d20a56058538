"""What the UIs show beyond single numbers: figures (PNG) and tables.

Every figure is logged to MLflow as an artifact and shown as Dagster asset metadata (a Markdown image with a
``data:`` URI, which the Dagster UI renders inline); data frames become Dagster table metadata. Figures are drawn
with matplotlib's object-oriented API on the Agg canvas: no pyplot, no display, no global backend state, so they
render the same in a run worker, a test and a headless CI machine.
"""

from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 80
MAX_DRIFT_PANELS = 12  # wider datasets show the features with the highest PSI
DRIFT_COLUMNS = 4
TABLE_DIGITS = 4


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure attached to an Agg canvas (imported here: matplotlib costs half a second to import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> MetadataValue:
    """A PNG as Dagster Markdown metadata: the UI shows the picture itself."""
    encoded = base64.b64encode(png).decode("ascii")
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def validation_figure(task_type: str, y_true, y_pred, title: str) -> Figure:
    """A confusion matrix for classification, predicted against actual for regression."""
    if task_type == "classification":
        return confusion_matrix_figure(y_true, y_pred, title)
    return predicted_vs_actual_figure(y_true, y_pred, title)


def validation_plot_path(task_type: str) -> str:
    """Where ``validation_figure`` goes among a run's MLflow artifacts."""
    return "plots/confusion_matrix.png" if task_type == "classification" else "plots/predicted_vs_actual.png"


def confusion_matrix_figure(y_true, y_pred, title: str) -> Figure:
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(pd.Series(y_true).tolist()) | set(pd.Series(y_pred).tolist()), key=str)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    size = 2.4 + 0.45 * len(labels)
    figure = new_figure(size + 0.8, size)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    names = [str(label) for label in labels]
    axes.set_xticks(range(len(labels)), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    axes.set_yticks(range(len(labels)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
            fontsize=9,
        )
    axes.set_title(title, fontsize=10)
    return figure


def predicted_vs_actual_figure(y_true, y_pred, title: str) -> Figure:
    actual, predicted = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    figure = new_figure(4.4, 4.0)
    axes = figure.subplots()
    axes.scatter(actual, predicted, s=12, alpha=0.6)
    low, high = float(np.nanmin([actual.min(), predicted.min()])), float(np.nanmax([actual.max(), predicted.max()]))
    axes.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="perfect")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.legend(fontsize=8)
    axes.set_title(title, fontsize=10)
    return figure


def importance_figure(importance: pd.DataFrame, title: str, top: int = 20) -> Figure:
    """Permutation importance of the raw columns (``training.explain.feature_importance``), largest first."""
    shown = importance.head(top).iloc[::-1]
    figure = new_figure(6.0, 0.3 * len(shown) + 1.2)
    axes = figure.subplots()
    axes.barh(shown["feature"], shown["importance"], xerr=shown["std"], color="tab:blue")
    axes.set_xlabel("drop in score when shuffled")
    axes.set_title(title, fontsize=9)
    axes.tick_params(labelsize=7)
    return figure


def _category_bars(axes, reference: pd.Series, current: pd.Series, top: int = 12) -> None:
    """Shares of the most common categories, training rows beside the current dataset."""
    ref = reference.dropna().astype(str).value_counts(normalize=True)
    cur = current.dropna().astype(str).value_counts(normalize=True)
    shown = ref.index[:top].tolist() + [c for c in cur.index[:top] if c not in ref.index][: max(0, top - len(ref))]
    positions = np.arange(len(shown))
    axes.bar(positions - 0.2, ref.reindex(shown, fill_value=0), 0.4, color="tab:blue", label="training rows")
    axes.bar(positions + 0.2, cur.reindex(shown, fill_value=0), 0.4, color="tab:orange", label="current dataset")
    axes.set_xticks(positions, shown, rotation=45, fontsize=6)


def drift_histograms(reference: pd.DataFrame, current: pd.DataFrame, drift: pd.DataFrame) -> Figure:
    """One histogram per feature, training (reference) rows against the current dataset, PSI and KS in the title.

    ``drift`` is ``quality.drift.feature_drift``'s frame; drifted features have red titles. With more than
    ``MAX_DRIFT_PANELS`` features, the ones with the highest PSI are shown.
    """
    shown = (
        drift.sort_values("psi", ascending=False, kind="stable").head(MAX_DRIFT_PANELS)
        if len(drift) > MAX_DRIFT_PANELS
        else drift
    )
    panels = max(len(shown), 1)
    columns = min(DRIFT_COLUMNS, panels)
    rows = math.ceil(panels / columns)
    figure = new_figure(3.0 * columns, 2.4 * rows + 0.5)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, row in zip(grid.flat, shown.itertuples()):
        if getattr(row, "kind", "numeric") == "categorical":
            _category_bars(axes, reference[row.feature], current[row.feature])
        else:
            ref = reference[row.feature].dropna().to_numpy(dtype=float)
            cur = current[row.feature].dropna().to_numpy(dtype=float)
            both = np.concatenate([ref, cur])
            bins = np.histogram_bin_edges(both, bins=20) if both.size else 10
            axes.hist(ref, bins=bins, density=True, alpha=0.55, color="tab:blue", label="training rows")
            axes.hist(cur, bins=bins, density=True, alpha=0.55, color="tab:orange", label="current dataset")
        psi = "inf" if not math.isfinite(row.psi) else f"{row.psi:.3f}"
        test = "chi2" if getattr(row, "kind", "numeric") == "categorical" else "KS"
        axes.set_title(
            f"{row.feature}\nPSI {psi}, {test} p={row.ks_pvalue:.2g}" + (" DRIFT" if row.drifted else ""),
            fontsize=9,
            color="tab:red" if row.drifted else "black",
        )
        axes.tick_params(labelsize=7)
        axes.set_yticks([])
    for axes in list(grid.flat)[len(shown) :]:
        axes.set_visible(False)
    grid.flat[0].legend(fontsize=7, loc="upper right")
    subtitle = f" (top {len(shown)} of {len(drift)} by PSI)" if len(shown) < len(drift) else ""
    figure.suptitle(f"Feature drift: training rows vs current dataset{subtitle}", fontsize=11)
    return figure


def frame_table(frame: pd.DataFrame, digits: int = TABLE_DIGITS) -> TableMetadataValue:
    """A data frame as Dagster table metadata: typed columns, floats rounded, non-finite numbers as empty cells."""
    columns = [TableColumn(name=str(name), type=_column_type(frame[name])) for name in frame.columns]
    records = [
        TableRecord({str(key): _cell(value, digits) for key, value in row.items()}) for row in frame.to_dict("records")
    ]
    return MetadataValue.table(records=records, schema=TableSchema(columns=columns))


def _column_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "string"


def _cell(value, digits: int):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits) if math.isfinite(value) else None
    return str(value)
