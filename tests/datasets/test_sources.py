"""Reading built-in datasets and CSV files into clean frames, and every way a source is rejected."""

from __future__ import annotations

import re

import pytest

from mlplatform.datasets.sources import DatasetError, read_source, sql_name, validate_name

IRIS_FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
SQL_SAFE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.mark.parametrize(
    "name, rows, task_type",
    [
        ("iris", 150, "classification"),
        ("wine", 178, "classification"),
        ("breast_cancer", 569, "classification"),
        ("diabetes", 442, "regression"),
    ],
)
def test_builtin_datasets_load_with_float_features_and_sql_safe_names(name, rows, task_type):
    data = read_source(name)
    assert (data.name, data.source, data.task_type, data.target) == (name, name, task_type, "target")
    assert len(data.frame) == rows
    assert data.frame.columns[-1] == "target"
    assert data.features == list(data.frame.columns[:-1])
    assert all(SQL_SAFE.match(c) for c in data.frame.columns)
    assert all(str(data.frame[f].dtype) == "float64" for f in data.features)


def test_iris_columns_and_classes():
    data = read_source("iris")
    assert data.features == IRIS_FEATURES
    assert str(data.frame["target"].dtype) == "int64"
    assert sorted(data.frame["target"].unique()) == [0, 1, 2]


GOOD_CSV = "Sepal Length (cm),petal-width,Species Kind\n5.1,0.2,setosa\n7.0,1.4,versicolor\n6.3,,virginica\n"


@pytest.mark.parametrize("target", ["Species Kind", "species_kind"])
def test_good_csv_loads_with_target_as_written_or_sanitized(tmp_path, target):
    path = tmp_path / "My Flowers.csv"
    path.write_text(GOOD_CSV)
    data = read_source(str(path), target=target)
    assert data.name == "my_flowers"
    assert data.source == str(path.resolve())
    assert list(data.frame.columns) == ["sepal_length_cm", "petal_width", "species_kind"]
    assert data.target == "species_kind" and data.task_type == "classification"
    assert data.frame["sepal_length_cm"].tolist() == [5.1, 7.0, 6.3]
    assert data.frame["petal_width"].dtype == "float64" and data.frame["petal_width"].isna().sum() == 1
    assert data.frame["species_kind"].tolist() == ["setosa", "versicolor", "virginica"]


def test_csv_with_continuous_target_is_regression_and_name_can_be_given(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("x,price\n1,10.5\n2,11.25\n3,9.75\n")
    data = read_source(str(path), target="price", name="houses")
    assert (data.name, data.task_type) == ("houses", "regression")
    assert data.frame["price"].tolist() == [10.5, 11.25, 9.75]


@pytest.mark.parametrize(
    "content, target, expected",
    [
        pytest.param(
            "a,b,y\n1,2,0\n3,4,1\n", "label", ["no target column 'label'", "columns are: a, b, y"], id="missing-target"
        ),
        pytest.param(
            "a,b,y\n1,2,0\n3,4,1\n5,oops,1\n", "y", ["column 'b'", "line 4", "'oops'"], id="garbage-in-feature"
        ),
        pytest.param(
            "a,b,y\n1,2,0\n\n3,oops,1\n", "y", ["column 'b'", "line 4", "'oops'"], id="garbage-after-blank-line"
        ),
        pytest.param("", "y", ["is empty"], id="empty-file"),
        pytest.param("a,b,y\n", "y", ["header but no data rows"], id="header-only"),
        pytest.param(
            "a,b,y\n1,2,0\n3,4,\n5,6,1\n", "y", ["target column 'y' is empty on line 3"], id="target-empty-cell"
        ),
        pytest.param("a,b,y\n1,2,cat\n3,4,cat\n", "y", ["target column 'y'", "single class"], id="single-class"),
        pytest.param(
            "a b,a_b,y\n1,2,0\n3,4,1\n", "y", ["a b, a_b", "map to the same column name"], id="clashing-names"
        ),
    ],
)
def test_bad_csv_raises_dataset_error_naming_the_problem(tmp_path, content, target, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError) as raised:
        read_source(str(path), target=target)
    message = str(raised.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("spec", ["mnist", "does/not/exist.csv"])
def test_unknown_builtin_or_missing_file(tmp_path, spec):
    with pytest.raises(DatasetError, match=r"neither a built-in \(breast_cancer, diabetes, iris, wine\)"):
        read_source(spec if "/" not in spec else str(tmp_path / spec), target="y")


def test_csv_without_target(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,y\n1,0\n2,1\n")
    with pytest.raises(DatasetError, match="needs a target column: pass --target"):
        read_source(str(path))


@pytest.mark.parametrize("bad", ["Iris", "1iris", "iris-data", "iris data", "a" * 41])
def test_invalid_dataset_names(tmp_path, bad):
    with pytest.raises(DatasetError, match="dataset name .* is invalid"):
        read_source("iris", name=bad)
    path = tmp_path / "data.csv"
    path.write_text("a,y\n1,0\n2,1\n")
    with pytest.raises(DatasetError, match="is invalid"):
        read_source(str(path), target="y", name=bad)


@pytest.mark.parametrize("good", ["iris", "a", "my_data_2", "a" * 40])
def test_valid_dataset_names(good):
    assert validate_name(good) == good


@pytest.mark.parametrize(
    "raw, clean",
    [("sepal length (cm)", "sepal_length_cm"), ("  Price-USD ", "price_usd"), ("2024 sales", "c_2024_sales")],
)
def test_sql_name(raw, clean):
    assert sql_name(raw) == clean


def test_sql_name_without_letters_or_digits():
    with pytest.raises(DatasetError, match="no letters or digits"):
        sql_name("(%)")
