"""The guard rails of automatic retraining, at chosen instants (the sensor passes the clock and Dagster's runs)."""

from __future__ import annotations

from datetime import UTC, datetime

from mlplatform.retraining import REASON_TAG, RetrainPolicy, held_back, with_retrain_reason

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp()
HOUR = 3600.0
POLICY = RetrainPolicy(
    on_new_data=True, on_drift=True, on_quality=False, drift_min_features=1, cooldown_minutes=90, daily_max=2
)


def test_a_run_in_flight_comes_first():
    assert held_back(POLICY, ["0123456789abcdef"], NOON - 5 * HOUR, [], NOON) == "training run 01234567 in flight"


def test_the_cooldown_runs_from_the_last_automatic_start_of_the_dataset():
    assert held_back(POLICY, [], NOON - HOUR, [NOON - HOUR], NOON) == "cool-down until 12:30 UTC"
    assert held_back(POLICY, [], NOON - 1.5 * HOUR, [NOON - 1.5 * HOUR], NOON) is None


def test_the_daily_maximum_counts_the_last_24_hours_and_says_when_a_slot_frees():
    starts = [NOON - 30 * HOUR, NOON - 20 * HOUR, NOON - 3 * HOUR]  # the first is older than a day
    assert held_back(POLICY, [], None, starts, NOON) == (
        "daily max of 2 automatic retrainings reached, next after 16:00 UTC"
    )
    assert held_back(POLICY, [], None, starts[:2], NOON) is None


def test_the_switches_and_the_history_reason():
    assert POLICY.watching == ("new_data", "drift")
    reason = "candidate accuracy 0.9667 beats production 0.3333 by more than 0.0"
    assert with_retrain_reason({}, reason) == reason
    assert with_retrain_reason({REASON_TAG: "drift on 3 of 7 features in wine v4"}, reason) == (
        f"retrained: drift on 3 of 7 features in wine v4; {reason}"
    )
