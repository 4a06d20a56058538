"""Bad input fails the run with a message naming the problem, and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from mlplatform.appdb.schema import dataset_versions
from mlplatform.runner import JobFailed

BAD_CSVS = {
    "missing_target": ("a,b,c\n1,2,3\n4,5,6\n", "has no target column 'label'; its columns are: a, b, c"),
    "garbage": ("a,b,label\n1,2,x\n4,oops,y\n", "column 'b' must be numeric, but line 3 holds 'oops'"),
    "empty": ("", "is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_fails_clearly_and_writes_nothing(lifecycle, tmp_path, case):
    content, message = BAD_CSVS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(content)
    with pytest.raises(JobFailed) as failure:
        lifecycle.load("uploaded", str(path), "label")
    assert message in str(failure.value)
    assert "raw_dataset" in str(failure.value)
    with lifecycle.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dataset_versions)).scalar() == 0
    assert not [t for t in inspect(lifecycle.engine).get_table_names() if t.startswith("ds_")]


def test_a_bad_reload_keeps_the_stored_version(lifecycle, tmp_path):
    lifecycle.load("iris")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(JobFailed):
        lifecycle.load("iris", str(bad), "target")
    with lifecycle.engine.connect() as conn:
        assert conn.execute(select(dataset_versions.c.version)).scalars().all() == [1]


def test_training_before_loading_names_the_missing_step(lifecycle):
    with pytest.raises(JobFailed, match="dataset 'never_loaded' has no version in app-db: materialize raw_dataset"):
        lifecycle.run("training_job", "never_loaded")


def test_inference_without_production_names_the_alias(lifecycle):
    lifecycle.load("iris")
    with pytest.raises(JobFailed, match="'mlplatform_iris' has no version with alias 'Production'"):
        lifecycle.run("inference_job", "iris")
