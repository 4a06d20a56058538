"""Sensors look as often as configured, on the grid of Dagster's sensor daemon (a loop every 5 s)."""

from __future__ import annotations

import math

import pytest
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

from mlplatform.sensors.ticks import minimum_interval

TICK_RECORDED_AFTER_S = 0.02  # a tick's start is written a little after its loop begins


def evaluated_every(min_interval: int, loops: int = 60) -> float:
    """The mean period of a sensor's ticks, as the daemon decides them: each loop evaluates the sensor when the last
    tick started ``min_interval`` or more seconds ago (``dagster._daemon.sensor.is_under_min_interval``)."""
    ticks: list[float] = []
    for loop in range(loops):
        now = loop * MIN_INTERVAL_LOOP_TIME
        if not ticks or now - ticks[-1] >= min_interval:
            ticks.append(now + TICK_RECORDED_AFTER_S)
    return (ticks[-1] - ticks[0]) / (len(ticks) - 1)


@pytest.mark.parametrize("seconds", [1, 5, 10, 17, 30, 60])
def test_a_sensor_looks_as_often_as_configured_on_the_daemons_grid(seconds):
    expected = max(MIN_INTERVAL_LOOP_TIME, math.ceil(seconds / MIN_INTERVAL_LOOP_TIME) * MIN_INTERVAL_LOOP_TIME)
    assert evaluated_every(minimum_interval(seconds)) == pytest.approx(expected)


def test_the_interval_as_configured_would_skip_every_other_loop():
    assert evaluated_every(5) == pytest.approx(10)  # why minimum_interval asks for less
