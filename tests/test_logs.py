"""The platform's JSON log lines: stable fields always present, extra fields kept, one object per line."""

from __future__ import annotations

import io
import json
import logging

from mlplatform.logs import STABLE_FIELDS, configure, event_line, log_event, platform_logger


def test_event_line_has_every_stable_field():
    record = json.loads(event_line("serving_switched", model="m", alias="Production", version=3, took_s=0.2))
    assert set(STABLE_FIELDS) <= set(record)
    assert record["event"] == "serving_switched" and record["version"] == 3 and record["took_s"] == 0.2
    assert record["dataset"] is None and record["run_id"] is None
    assert list(record)[:3] == ["ts", "level", "event"]


def test_platform_loggers_write_one_json_object_per_line():
    stream = io.StringIO()
    root = logging.getLogger("mlplatform")
    saved = list(root.handlers)
    root.handlers.clear()
    try:
        configure(stream)
        configure(stream)  # idempotent: one handler
        log_event(platform_logger("test"), "run_finished", dataset="iris", run_id="abc")
        log_event(platform_logger("test"), "run_failed", level="warning", dataset="iris", error="boom")
    finally:
        root.handlers[:] = saved
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["event"], r["level"], r["dataset"]) for r in lines] == [
        ("run_finished", "info", "iris"),
        ("run_failed", "warning", "iris"),
    ]
    assert lines[0]["run_id"] == "abc" and lines[1]["error"] == "boom"
