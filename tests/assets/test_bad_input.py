"""Bad input fails the run with a message naming the problem, and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from mlplatform.appdb.schema import dataset_versions
from mlplatform.runner import JobFailed

ROWS = "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(12))  # a,b,label: 12 good rows
BAD_CSVS = {
    "missing_target": ("a,b,c\n" + ROWS, "has no target column 'label'; its columns are: a, b, c"),
    "empty": ("", "is empty"),
    "duplicate_header": ("a,a,label\n" + ROWS, "header 'a' appears twice on line 1 (columns 1 and 2)"),
    "blank_header": ("a, ,label\n" + ROWS, "column 2 has a blank header on line 1"),
    "reserved_name": ("row_id,b,label\n" + ROWS, "column 1 is named 'row_id' (line 1), which app-db reserves"),
    "long_name": (f"{'a' * 70},b,label\n" + ROWS, "header of column 1 on line 1 is 70 characters"),
    "infinity": ("a,b,label\n" + ROWS + "-inf,1,x\n", "column 'a' holds an infinite value on line 14"),
    "too_few_rows": ("a,b,label\n1,2,x\n4,5,y\n", "has 2 rows; training and validation need at least 10"),
    "rare_class": ("a,b,label\n" + ROWS + "1,1,z\n", "1 class(es) with fewer than 2 rows (the first on line 14)"),
    "target_gaps": ("a,b,label\n" + ROWS + "1,1,\n2,2,\n", "target column 'label' is empty on 2 rows, the first"),
    "dates": (
        "a,when,label\n" + "".join(f"{i},2024-03-{i + 1:02d},{'xy'[i % 2]}\n" for i in range(12)),
        "column 'when' holds dates or times",
    ),
    "not_utf8": ("a,b,label\n" + ROWS + "1,caf\xe9,x\n", "is not UTF-8 (first undecodable byte on line 14)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_fails_clearly_and_writes_nothing(lifecycle, tmp_path, case):
    content, message = BAD_CSVS[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content.encode("latin-1"))
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


@pytest.mark.parametrize("where", ["outside", "linked"])
def test_runs_read_dataset_files_only_from_the_data_directories(lifecycle, tmp_path_factory, where):
    """A launchpad or Airflow param naming a file elsewhere (say, a .env with a password) fails before the file is
    opened, and the message shows nothing of what the file holds."""
    secret = tmp_path_factory.mktemp("elsewhere") / "secrets.csv"
    secret.write_text("user,password\nadmin,hunter2\n")
    source = secret
    if where == "linked":  # a link inside a data directory does not lead outside it
        source = lifecycle.settings.data_dirs[0] / "innocent.csv"
        source.symlink_to(secret)
    with pytest.raises(JobFailed) as failure:
        lifecycle.load("leak", str(source), "password")
    assert "is outside the data directories" in str(failure.value) and "MLPLATFORM_DATA_DIRS" in str(failure.value)
    assert "hunter2" not in str(failure.value) and "admin" not in str(failure.value)
    with lifecycle.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dataset_versions)).scalar() == 0
