"""Sensors: they only decide (cursor, run_key) and yield RunRequests; runs do the work."""
