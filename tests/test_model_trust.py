"""The platform's trust check on model files: its own kind of model passes; anything that would run foreign code
when loaded is refused before any deserialization (real MLflow model folders, saved as MLflow saves them)."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from mlflow.sklearn import save_model
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlplatform.model_trust import UntrustedModel, check_model_folder

X, Y = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.9]]), [0, 1, 1, 0]


def _saved(pipeline, folder, **options):
    options.setdefault("skops_trusted_types", skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    options.setdefault("pip_requirements", [])  # inferring them takes seconds and is not under test
    save_model(pipeline.fit(X, Y), str(folder), serialization_format=options.pop("format", "skops"), **options)
    return folder


def test_a_pipeline_the_platform_trains_passes(tmp_path):
    check_model_folder(_saved(make_pipeline(StandardScaler(), LogisticRegression()), tmp_path / "m"), "m v1")


def test_a_model_whose_file_declares_a_foreign_callable_trusted_is_refused(tmp_path):
    pipeline = make_pipeline(FunctionTransformer(abs, check_inverse=False), LogisticRegression())
    with pytest.raises(UntrustedModel, match="builtins.abs"):
        check_model_folder(_saved(pipeline, tmp_path / "m"), "m v2")


def test_a_pickled_model_is_refused(tmp_path):
    folder = _saved(make_pipeline(LogisticRegression()), tmp_path / "m", format="cloudpickle", skops_trusted_types=None)
    with pytest.raises(UntrustedModel, match="not skops"):
        check_model_folder(folder, "m v3")


def test_a_folder_without_a_scikit_learn_model_is_refused(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: no.such.module}}\n")
    with pytest.raises(UntrustedModel, match="not a scikit-learn model"):
        check_model_folder(tmp_path, "m v4")
