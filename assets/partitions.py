"""One partition per dataset, so several datasets never overwrite each other's work."""

from dagster import DynamicPartitionsDefinition

dataset_partitions = DynamicPartitionsDefinition(name="dataset")
