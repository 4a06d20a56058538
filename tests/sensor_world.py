"""The alias sensor and serving job driven from a test: the code location's sensor evaluated at a cursor, the
run requests it gives executed in-process against the same Dagster instance, and what is served, probed."""

from __future__ import annotations

import json
import urllib.request

from dagster import SkipReason, build_sensor_context

from mlplatform.contract import load_sample_input
from mlplatform.serving.reconcile import health

from conftest import Lifecycle


class World:
    def __init__(self, lifecycle: Lifecycle, model: str) -> None:
        self.lifecycle, self.cursor = lifecycle, None
        self.registry = lifecycle.registry()
        self.sample = load_sample_input(self.registry, self.registry.require_alias(model, "Production").run_id)

    def evaluate(self, mlflow=None):
        """One evaluation of the code location's alias sensor at the current cursor (which it does not advance)."""
        resources = {
            "mlflow": mlflow or self.lifecycle.defs.resources["mlflow"],
            "serving": self.lifecycle.defs.resources["serving"],
        }
        context = build_sensor_context(instance=self.lifecycle.instance, cursor=self.cursor, resources=resources)
        [sensor] = [s for s in self.lifecycle.defs.sensors if s.name == "alias_sensor"]
        return sensor(context)

    def tick(self):
        result = self.evaluate()
        if not isinstance(result, SkipReason):
            self.cursor = result.cursor
        return result

    def run(self, request):
        job = self.lifecycle.defs.resolve_job_def("serving_job")
        return job.execute_in_process(
            run_config=request.run_config, instance=self.lifecycle.instance, tags=request.tags, raise_on_error=False
        )

    def tick_and_run(self):
        result = self.tick()
        return result, [self.run(r) for r in result.run_requests]

    def status(self) -> list[dict]:
        backend = self.lifecycle.serving()
        records = list(backend.state.read().values())
        probed = health(backend, records)
        return [
            {"version": r.upstream.version, "url": r.address, "healthy": probed[r.name], "record": r} for r in records
        ]

    def invoke(self, url: str, payload: bytes, content_type: str = "application/json"):
        request = urllib.request.Request(f"{url}/invocations", data=payload, headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers["X-Model-Version"], json.loads(response.read())["predictions"]

    def sample_payload(self) -> bytes:
        return json.dumps({"dataframe_split": json.loads(self.sample.to_json(orient="split", index=False))}).encode()
