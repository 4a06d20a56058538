"""The one code location: what `dagster dev -w workspace.yaml` shows."""

from __future__ import annotations

from datetime import datetime, timezone

from dagster import AssetCheckKey, AssetKey, build_schedule_context

from mlplatform.assets.jobs import SCHEDULES
from mlplatform.definitions import defs

TICK = datetime(2026, 11, 27, 6, tzinfo=timezone.utc)
ASSETS = ["raw_dataset", "candidate_model", "production_alias", "predictions", "monitoring_report"]


def test_five_assets_in_lineage_order():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(ASSETS)
    for upstream, downstream in zip(ASSETS, ASSETS[1:]):
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys


def test_checks_are_declared():
    graph = defs.resolve_asset_graph()
    assert graph.asset_check_keys == {
        AssetCheckKey(AssetKey("raw_dataset"), "typed_schema"),
        AssetCheckKey(AssetKey("raw_dataset"), "no_nulls"),
        AssetCheckKey(AssetKey("raw_dataset"), "target_present"),
        AssetCheckKey(AssetKey("monitoring_report"), "no_feature_drift"),
        AssetCheckKey(AssetKey("monitoring_report"), "production_quality"),
    }


def test_jobs_map_onto_the_old_dags_with_their_schedules():
    crons = {s.job_name: s.cron_schedule for s in SCHEDULES}
    assert crons == {
        "data_load_job": "@daily",
        "training_job": "@weekly",
        "inference_job": "@hourly",
        "monitoring_job": "@daily",
    }
    hooked = {name for name in crons if defs.resolve_job_def(name).hook_defs}
    assert hooked == {"training_job", "monitoring_job"}


def test_schedules_request_one_run_per_dataset(lifecycle):
    schedule = next(s for s in SCHEDULES if s.job_name == "inference_job")
    empty = schedule.evaluate_tick(build_schedule_context(instance=lifecycle.instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()))
    assert not empty.run_requests and "no dataset partitions" in empty.skip_message
    lifecycle.instance.add_dynamic_partitions("dataset", ["iris", "wine"])
    tick = schedule.evaluate_tick(build_schedule_context(instance=lifecycle.instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()))
    assert sorted(r.partition_key for r in tick.run_requests) == ["iris", "wine"]
    assert len({r.run_key for r in tick.run_requests}) == 2
