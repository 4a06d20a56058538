"""The categories a fitted pipeline saw in training: what inference compares new rows with. Kept apart from
``candidates`` so that inference reads them without importing scikit-learn (about 1 s off every process that
loads the code location)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MISSING = "__missing__"  # the category of a gap (None or NaN) in a categorical column


def known_categories(pipeline: Pipeline) -> dict[str, set[str]]:
    """The categories each categorical column had in training, from the fitted pipeline (empty without any, or for
    a model that is not one of the platform's pipelines)."""
    prepare = getattr(pipeline, "named_steps", {}).get("prepare")
    if prepare is None:
        return {}
    for name, transformer, columns in prepare.transformers_:
        if name == "categorical" and len(columns):
            encoder = transformer.named_steps["encode"]
            return {c: {str(v) for v in cats} - {MISSING} for c, cats in zip(columns, encoder.categories_)}
    return {}
