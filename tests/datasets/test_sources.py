"""Reading built-in datasets and CSV files into clean frames, and every way a source is rejected."""

from __future__ import annotations

import re

import pytest

from mlplatform.datasets.feature_types import TypeOverrides
from mlplatform.datasets.sources import (
    DatasetError,
    SourceRequest,
    read_all,
    read_request,
    read_source,
    sql_name,
    validate_name,
)

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


GOOD_CSV = "Sepal Length (cm),petal-width,Species Kind\n" + "5.1,0.2,setosa\n7.0,1.4,versicolor\n6.3,,virginica\n" * 4


@pytest.mark.parametrize("target", ["Species Kind", "species_kind"])
def test_good_csv_loads_with_target_as_written_or_sanitized(tmp_path, target):
    path = tmp_path / "My Flowers.csv"
    path.write_text(GOOD_CSV)
    data = read_source(str(path), target=target)
    assert data.name == "my_flowers"
    assert data.source == str(path.resolve())
    assert list(data.frame.columns) == ["sepal_length_cm", "petal_width", "species_kind"]
    assert data.target == "species_kind" and data.task_type == "classification"
    assert data.frame["sepal_length_cm"].tolist() == [5.1, 7.0, 6.3] * 4
    assert data.frame["petal_width"].dtype == "float64" and data.frame["petal_width"].isna().sum() == 4
    assert data.frame["species_kind"].tolist() == ["setosa", "versicolor", "virginica"] * 4
    assert data.kinds == {"sepal_length_cm": "numeric", "petal_width": "numeric"}


def test_csv_with_continuous_target_is_regression_and_name_can_be_given(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("x,price\n" + "1,10.5\n2,11.25\n3,9.75\n" * 4)
    data = read_source(str(path), target="price", name="houses")
    assert (data.name, data.task_type) == ("houses", "regression")
    assert data.frame["price"].tolist() == [10.5, 11.25, 9.75] * 4


ROWS = "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(12))  # a,b,y: 12 good rows


@pytest.mark.parametrize(
    "content, target, expected",
    [
        pytest.param(
            "a,b,y\n" + ROWS, "label", ["no target column 'label'", "columns are: a, b, y"], id="missing-target"
        ),
        pytest.param("", "y", ["is empty"], id="empty-file"),
        pytest.param("a,b,y\n", "y", ["header but no data rows"], id="header-only"),
        pytest.param(
            "a,b,y\n" + ROWS + "3,4,\n5,6,\n",
            "y",
            ["target column 'y' is empty on 2 rows, the first on line 14"],
            id="target-gaps",
        ),
        pytest.param("a,b,y\n" + "1,2,cat\n" * 12, "y", ["target column 'y'", "single class"], id="single-class"),
        pytest.param("a b,a_b,y\n" + ROWS, "y", ["a b, a_b", "map to the same column name"], id="clashing-names"),
        pytest.param("a,a,y\n" + ROWS, "y", ["header 'a' appears twice on line 1 (columns 1 and 2)"], id="duplicate"),
        pytest.param("a,,y\n" + ROWS, "y", ["column 2 has a blank header on line 1"], id="blank-header"),
        pytest.param(
            "Row ID,b,y\n" + ROWS, "y", ["column 1 is named 'Row ID' (line 1), which app-db reserves"], id="reserved"
        ),
        pytest.param(
            f"{'x' * 64},b,y\n" + ROWS,
            "y",
            ["header of column 1 on line 1 is 64 characters", "at most 63"],
            id="long-name",
        ),
        pytest.param("a,b,y\n" + ROWS + "inf,1,a\n", "y", ["column 'a' holds an infinite value on line 14"], id="inf"),
        pytest.param("a,b,y\n" + ROWS[: ROWS.index("9,")], "y", ["has 9 rows", "at least 10"], id="too-few-rows"),
        pytest.param(
            "a,b,y\n" + ROWS + "1,2,c\n",
            "y",
            ["1 class(es) with fewer than 2 rows (the first on line 14)"],
            id="rare-class",
        ),
        pytest.param(
            "a,b,y,when\n" + "".join(f"{i},1,{'ab'[i % 2]},2024-01-{i + 1:02d}\n" for i in range(12)),
            "y",
            ["column 'when' holds dates or times", "--drop when"],
            id="datetime",
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


def test_non_utf8_is_refused_unless_the_encoding_is_given(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(("city,n,y\n" + "".join(f"Malm\u00f6,{i},{'ab'[i % 2]}\n" for i in range(12))).encode("latin-1"))
    with pytest.raises(DatasetError, match=r"is not UTF-8 \(first undecodable byte on line 2\); pass its encoding"):
        read_source(str(path), target="y")
    data = read_all(SourceRequest(str(path), "y", encoding="latin-1"))
    assert set(data.frame["city"]) == {"Malm\u00f6"}


def test_semicolon_delimiter_is_detected(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n" + ROWS.replace(",", ";"))
    assert read_source(str(path), target="y").features == ["a", "b"]


def test_types_are_inferred_and_overridden(tmp_path):
    path = tmp_path / "mixed.csv"
    rows = [
        f"K{i},{i % 4},{'yes' if i % 2 else 'no'},{'TRUE' if i % 3 else 'false'},"
        f"{i * 1.5 if i % 5 else ''},{'ab'[i % 2]}"
        for i in range(30)
    ]
    path.write_text("id,code,answer,flag,amount,y\n" + "\n".join(rows) + "\n")
    data = read_source(str(path), target="y")
    assert data.kinds == {"code": "numeric", "answer": "categorical", "flag": "categorical", "amount": "numeric"}
    assert data.dropped == {"id": "unique per row (an ID column)"}
    assert set(data.frame["flag"]) == {"true", "false"}
    assert data.frame["amount"].isna().sum() == 6
    overridden = read_source(str(path), target="y", overrides=TypeOverrides.parse("code", "answer"))
    assert overridden.kinds == {"code": "categorical", "flag": "categorical", "amount": "numeric"}
    assert set(overridden.frame["code"]) == {"0", "1", "2", "3"}
    assert overridden.dropped == {"id": "unique per row (an ID column)", "answer": "dropped by the run config"}
    with pytest.raises(DatasetError, match="the type overrides name columns it does not have: nope"):
        read_source(str(path), target="y", overrides=TypeOverrides.parse(drop="nope"))


def test_messages_never_quote_cell_values(tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("a,b,y\n" + ROWS + "SECRET-VALUE,1,\n")
    with pytest.raises(DatasetError) as raised:
        read_source(str(path), target="y")
    assert "SECRET" not in str(raised.value) and "line 14" in str(raised.value)


@pytest.mark.parametrize("spec", ["mnist", "does/not/exist.csv"])
def test_unknown_builtin_or_missing_file(tmp_path, spec):
    with pytest.raises(
        DatasetError, match=r"neither a built-in \(breast_cancer, diabetes, iris, wine\) nor an existing"
    ):
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
    path.write_text("a,y\n" + "1,0\n2,1\n" * 6)
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


def test_parquet_source_keeps_types_and_gaps(tmp_path):
    from tables import customer_table

    path = tmp_path / "Customers.parquet"
    customer_table(100).to_parquet(path)
    data = read_source(str(path), target="churned")
    assert data.name == "customers" and data.source == str(path.resolve())
    assert data.kinds["plan"] == "categorical" and data.kinds["tenure_months"] == "numeric"
    assert data.dropped == {"customer_id": "unique per row (an ID column)"}
    assert data.frame["tenure_months"].isna().any() and data.frame["plan"].isna().any()


def test_sql_table_and_query_sources(tmp_path):
    from sqlalchemy import create_engine
    from tables import customer_table

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_engine(url)
    customer_table(100).to_sql("sales", engine, index=False)
    engine.dispose()
    table = read_all(SourceRequest(url, "churned", table="sales"))
    assert (table.name, len(table.frame)) == ("sales", 100)
    assert table.source == f"{url} table 'sales'"
    query = read_all(SourceRequest(url, "churned", "recent", query="select * from sales where monthly_spend > 40"))
    assert query.name == "recent" and 20 < len(query.frame) < 100
    assert query.kinds == table.kinds
    with pytest.raises(DatasetError, match="give exactly one of --table NAME or --query SQL"):
        read_request(SourceRequest(url, "churned"))
    with pytest.raises(DatasetError, match="table 'nope': no such table"):
        read_request(SourceRequest(url, "churned", table="nope"))
    with pytest.raises(DatasetError, match="query cannot be read: OperationalError"):
        read_request(SourceRequest(url, "churned", query="select * from nowhere"))
