"""The ``mlplatform`` command."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
import warnings
from typing import NoReturn

from mlplatform.cli.summary import render_summary
from mlplatform.masking import mask


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplatform", description="The ML lifecycle as Dagster assets.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole lifecycle on the embedded default and serve the model")
    demo.add_argument("--home", help="platform home (default: $MLPLATFORM_HOME or ./.mlplatform)")
    demo.add_argument(
        "--dataset",
        default="iris",
        help="iris, wine, breast_cancer, diabetes, a CSV or Parquet path, or a SQLAlchemy URL",
    )
    demo.add_argument("--target", help="target column (required for a file or database source)")
    demo.add_argument("--categorical", default="", help="comma-separated columns to treat as categorical")
    demo.add_argument("--drop", default="", help="comma-separated columns to leave out of the features")
    demo.add_argument("--encoding", default="", help="encoding of a CSV file that is not UTF-8, e.g. latin-1")
    demo.add_argument("--table", default="", help="with a SQLAlchemy URL as --dataset: the table to read")
    demo.add_argument("--query", default="", help="with a SQLAlchemy URL as --dataset: the SQL query to read")
    demo.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    demo.add_argument(
        "--keep-serving",
        action="store_true",
        help="leave the model served afterwards (`mlplatform serve down` stops it)",
    )
    dev = commands.add_parser("dev", help="the Dagster UI, daemon and sensors (dagster dev) over this home")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    server = commands.add_parser("tracking-server", help="MLflow tracking server on PostgreSQL with S3 artifacts")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--workers", type=int, default=2)
    alias = commands.add_parser("alias", help="aliases with history and rollback")
    alias_commands = alias.add_subparsers(dest="alias_command", required=True)
    alias_history = alias_commands.add_parser("history", help="every recorded change of the model's aliases")
    alias_history.add_argument("model")
    alias_history.add_argument("--json", action="store_true")
    alias_set = alias_commands.add_parser("set", help="point an alias at a version (recorded)")
    alias_set.add_argument("model")
    alias_set.add_argument("alias")
    alias_set.add_argument("version", type=int)
    alias_rollback = alias_commands.add_parser("rollback", help="move the alias back to its previous version")
    alias_rollback.add_argument("model")
    alias_rollback.add_argument("--alias", default=None, help="default: MLFLOW_MODEL_ALIAS (Production)")
    serve = commands.add_parser("serve", help="the model servers of this home")
    serve_commands = serve.add_subparsers(dest="serve_command", required=True)
    serve_status = serve_commands.add_parser("status", help="every model@alias with version, endpoint, health")
    serve_status.add_argument("--json", action="store_true")
    serve_commands.add_parser("up", help="reconcile the servers with the registry once, without Dagster")
    serve_commands.add_parser("down", help="stop every server of this home")
    for kind, word, what in (("canary", "weight", "answered by"), ("shadow", "share", "also sent to")):
        split = serve_commands.add_parser(kind, help=f"a share of the production server's invocations {what} an alias")
        split.add_argument("model")
        split.add_argument("--alias", required=True, help="the alias whose server takes the share (e.g. challenger)")
        split.add_argument(f"--{word}", dest="percent", type=float, required=True, help="percent of requests; 0 stops")
    exporter = commands.add_parser("exporter", help="Prometheus endpoint of model quality, drift, freshness, aliases")
    exporter.add_argument("--host", default="127.0.0.1")
    exporter.add_argument("--port", type=int, default=9108)
    observe = commands.add_parser("observe", help="Prometheus, Blackbox exporter and exporter on loopback")
    observe.add_argument("--prometheus-port", type=int, default=9090, help="0: a free port")
    observe.add_argument("--blackbox-port", type=int, default=9115, help="0: a free port")
    observe.add_argument("--exporter-port", type=int, default=9108, help="0: a free port")
    observe.add_argument("--interval", default="15s", help="scrape and rule evaluation interval")
    observe.add_argument("--json", action="store_true", help="print one JSON object with the URLs once all answer")
    bench = commands.add_parser("bench", help="benchmarks that print JSON")
    targets = bench.add_subparsers(dest="target", required=True)
    demo_bench = targets.add_parser("demo", help="time `mlplatform demo` in fresh homes and report model quality")
    demo_bench.add_argument("--datasets", default="iris,wine,breast_cancer", help="comma-separated datasets")
    demo_bench.add_argument("--json", action="store_true")
    inference_bench = targets.add_parser(
        "inference", help="batch inference paths on the PostgreSQL app-db (APP_DB_URI)"
    )
    inference_bench.add_argument("--rows", type=int, default=1_000_000)
    inference_bench.add_argument("--only", choices=["platform"], help="run the platform path alone (large N)")
    inference_bench.add_argument("--json", action="store_true")
    load_bench = targets.add_parser("load", help="CSV load paths into the PostgreSQL app-db (APP_DB_URI)")
    load_bench.add_argument("--rows", type=int, default=1_000_000)
    load_bench.add_argument("--only", choices=["platform"], help="run the platform path alone (large N)")
    load_bench.add_argument("--json", action="store_true")
    switch_bench = targets.add_parser("switch", help="Production switches under load with the sensor running")
    switch_bench.add_argument("--switches", type=int, default=4, help="moves made by the platform (alias set)")
    switch_bench.add_argument(
        "--registry-switches", type=int, default=2, help="moves made in the registry alone, followed by the sensor"
    )
    switch_bench.add_argument("--json", action="store_true")
    serve_bench = targets.add_parser(
        "serve", help="the gateway against a bare `mlflow models serve` under load, then shadow traffic off vs on"
    )
    serve_bench.add_argument("--seconds", type=float, default=20, help="load seconds on each path and shadow side")
    serve_bench.add_argument("--concurrency", type=int, default=8, help="clients at once (gateway, scoring, bare)")
    serve_bench.add_argument("--shadow-concurrency", type=int, default=1, help="clients at once (shadow off/on)")
    serve_bench.add_argument("--share", type=float, default=100.0, help="percent of invocations mirrored when on")
    serve_bench.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from mlplatform.cli.demo import run_demo
        from mlplatform.datasets.sources import DatasetError
        from mlplatform.runner import JobFailed
        from mlplatform.serving.rollout import RolloutFailed
        from mlplatform.serving.scoring_client import ServerError

        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is the summary (or JSON); MLflow prints run links
                options = {k: getattr(args, k) for k in ("encoding", "table", "query")}
                options |= {k: _columns(getattr(args, k)) for k in ("categorical", "drop")}
                summary = run_demo(args.home, args.dataset, args.target, args.keep_serving, options)
        except (DatasetError, JobFailed, ServerError, RolloutFailed) as exc:
            print(mask(f"mlplatform demo: {exc}"), file=sys.stderr)
            return 1
        print(json.dumps(summary, indent=2, default=str) if args.json else render_summary(summary))
        return 0 if summary["serving"]["invocation_ok"] else 1
    if args.command == "dev":
        from mlplatform.cli.dev import run_dev

        run_dev(args.host, args.port)
    if args.command == "tracking-server":
        from mlplatform.artifact_store import ArtifactStoreError
        from mlplatform.cli.tracking_server import run_tracking_server

        try:
            run_tracking_server(args.host, args.port, args.workers)
        except ArtifactStoreError as exc:
            print(mask(f"mlplatform tracking-server: {exc}"), file=sys.stderr)
            return 1
    if args.command in ("exporter", "observe"):
        from mlplatform.cli.observe import observe_command

        return observe_command(args)
    if args.command in ("alias", "serve"):
        return _serving_command(args)
    if args.command == "bench":
        print(json.dumps(_bench(args), indent=2))
        return 0
    return 2


def _columns(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def _serving_command(args) -> int:
    from mlflow.exceptions import MlflowException

    from mlplatform.cli.serving_commands import alias_command, serve_command
    from mlplatform.settings import Settings

    settings = Settings()
    if args.command == "alias" and getattr(args, "alias", None) is None:
        args.alias = settings.production_alias
    try:
        code, text = (alias_command if args.command == "alias" else serve_command)(settings, args)
    except (MlflowException, LookupError, ConnectionError) as exc:
        code, text = 1, mask(f"mlplatform {args.command}: {exc}")
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _bench(args) -> dict:
    from mlplatform.settings import Settings

    if args.target == "demo":
        from mlplatform.bench.demo import bench_demo

        return bench_demo([d.strip() for d in args.datasets.split(",") if d.strip()])
    if args.target == "switch":
        from mlplatform.bench.switch import bench_switch

        return bench_switch(args.switches, args.registry_switches)
    if args.target == "serve":
        from mlplatform.bench.serve import bench_serve

        return bench_serve(args.seconds, args.concurrency, args.shadow_concurrency, args.share)
    if args.target == "load":
        from mlplatform.bench.load import bench_load

        return bench_load(Settings().app_db_uri, args.rows, only_platform=args.only == "platform")
    from mlplatform.bench.inference import bench_inference

    return bench_inference(Settings().app_db_uri, args.rows, only_platform=args.only == "platform")


def run() -> NoReturn:
    """The ``mlplatform`` command: ``main``, its exit handlers and flushed output, then the exit itself without the
    interpreter's teardown of the libraries it loaded (about 1.7 s after the demo's summary, doing nothing useful:
    every store it wrote to has committed). An exception ends it the usual way, with its traceback."""
    # The commands print their own progress: MLflow's download bars (a line per artifact fetched) would bury it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Dagster warns about its own call when it attaches resources to a sensor's jobs (it passes ``owners`` on); the
    # platform sets no owners, so the warning would only be noise between the demo's steps.
    warnings.filterwarnings("ignore", message=r"Parameter `owners` of initializer `SensorDefinition.__init__`")
    code = main()
    atexit._run_exitfuncs()  # what the interpreter would run first at exit: logging's flush among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
