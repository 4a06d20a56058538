"""raw_dataset: a dataset loaded into app-db as a typed, content-hashed version, with blocking data checks."""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from mlplatform.appdb.datasets import latest_version, read_rows, store_dataset
from mlplatform.assets.partitions import dataset_partitions
from mlplatform.datasets.feature_types import TypeOverrides
from mlplatform.datasets.sources import SourceRequest, read_request
from mlplatform.masking import masks_credentials
from mlplatform.quality.dataset_checks import dataset_checks
from mlplatform.resources.app_db import AppDatabase
from mlplatform.resources.dataset_files import DatasetFiles

CHECK_NAMES = ("typed_schema", "no_nulls", "target_present")


class DatasetLoadConfig(Config):
    source: str = Field(
        default="",
        description="A built-in dataset (iris, wine, breast_cancer, diabetes) or a CSV path. Empty: the source "
        "recorded for this partition, else the built-in named like the partition.",
    )
    target: str = Field(default="", description="The target column of a file or database source.")
    categorical: list[str] = Field(
        default=[], description="Columns to treat as categorical (e.g. integer codes); the rest are inferred."
    )
    drop: list[str] = Field(default=[], description="Columns to leave out of the features.")
    encoding: str = Field(default="", description="Encoding of a CSV file; empty: UTF-8 (refused otherwise).")
    table: str = Field(default="", description="With a SQLAlchemy URL as source: the table to read.")
    query: str = Field(default="", description="With a SQLAlchemy URL as source: the SQL query to read.")


@asset(
    partitions_def=dataset_partitions,
    group_name="lifecycle",
    kinds={"sqlite", "postgres"},
    check_specs=[AssetCheckSpec(name, asset="raw_dataset", blocking=True) for name in CHECK_NAMES],
    description="Dataset rows in app-db with typed columns; loading the same content again is a no-op.",
)
@masks_credentials
def raw_dataset(
    context: AssetExecutionContext, config: DatasetLoadConfig, app_db: AppDatabase, dataset_files: DatasetFiles
) -> MaterializeResult:
    name = context.partition_key
    engine = app_db.engine
    previous = latest_version(engine, name)
    source = config.source or (previous.source if previous else name)
    dataset_files.check(source)
    target = config.target or (previous.target_column if previous and not config.source else "")
    request = SourceRequest(
        source,
        target or None,
        name,
        TypeOverrides.parse(config.categorical, config.drop),
        config.encoding or None,
        config.table or None,
        config.query or None,
    )
    dataset = store_dataset(engine, read_request(request))
    for column, why in (dataset.dropped_columns or {}).items():
        context.log.warning(f"dataset {name}: column {column!r} is not a feature: {why}")
    what = "stored" if dataset.created else "same content as stored, nothing written; it is the latest again"
    context.log.info(f"dataset {name} version {dataset.version}: {what}")
    checks = dataset_checks(read_rows(engine, dataset), dataset)
    return MaterializeResult(
        metadata={
            "version": dataset.version,
            "rows": dataset.rows,
            "columns": len(dataset.columns),
            "content_hash": dataset.content_hash,
            "new_version": dataset.created,
            "task_type": dataset.task_type,
            "target": dataset.target_column,
            "table": dataset.table_name,
            "source": MetadataValue.text(dataset.source),
            "feature_types": MetadataValue.json(dataset.kinds),
            "dropped_columns": MetadataValue.json(dataset.dropped_columns or {}),
        },
        check_results=[
            AssetCheckResult(check_name=c.name, passed=c.passed, description=c.description, metadata=c.metadata)
            for c in checks
        ],
        data_version=DataVersion(dataset.content_hash),
    )
