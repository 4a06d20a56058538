"""How often the platform's sensors are evaluated.

Dagster's sensor daemon looks at every sensor once per loop of 5 s (``MIN_INTERVAL_LOOP_TIME``) and evaluates one
whose last tick started at least ``minimum_interval_seconds`` ago. A tick's start is recorded a few milliseconds
after its loop begins, so an interval that is a whole number of loops is found just short of elapsed on every other
loop: a sensor meant to look every 5 s would look every 10 s. Asking for one second less keeps the interval asked
for, on the daemon's grid.
"""


def minimum_interval(seconds: int) -> int:
    """The ``minimum_interval_seconds`` that has a sensor evaluated every ``seconds`` (at most every 5 s)."""
    return max(1, seconds - 1)
