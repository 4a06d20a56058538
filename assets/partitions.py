"""One partition per dataset, so several datasets never overwrite each other's work."""

from dagster import DynamicPartitionsDefinition

DATASET_PARTITIONS = "dataset"
dataset_partitions = DynamicPartitionsDefinition(name=DATASET_PARTITIONS)
