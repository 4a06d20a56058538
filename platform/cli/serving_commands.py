"""``mlplatform alias ...`` and ``mlplatform serve ...``: aliases with history, and the servers of this home."""

from __future__ import annotations

import getpass
import json

from mlplatform.appdb.alias_history import history, previous_version
from mlplatform.masking import mask
from mlplatform.resources.build import build_resources
from mlplatform.serving.reconcile import health, stop_all
from mlplatform.serving.rollout import RolloutFailed, move_and_serve, reconcile_all
from mlplatform.serving.traffic import KINDS, TrafficError, set_split
from mlplatform.settings import Settings

ACTOR = f"cli:{getpass.getuser()}"


def alias_command(settings: Settings, args) -> tuple[int, str]:
    resources = build_resources(settings, environ={})
    registry, engine = resources["mlflow"].registry(), resources["app_db"].engine
    if args.alias_command == "history":
        changes = history(engine, args.model)
        if args.json:
            return 0, json.dumps(changes, default=str, indent=2)
        lines = [
            f"{c['changed_at']}  {c['alias']:<12} v{c['from_version']} -> v{c['to_version']}"
            f"  {c['actor']}: {c['reason']}"
            for c in changes
        ]
        return 0, "\n".join(lines) or f"no alias changes recorded for {args.model}"
    if args.alias_command == "set":
        version, reason = args.version, "set by hand"
    else:
        current = registry.require_alias(args.model, args.alias)
        version = previous_version(engine, args.model, args.alias, int(current.version))
        if version is None:
            return 1, f"{args.model}@{args.alias} (v{current.version}) has no earlier version in the alias history"
        reason = f"rollback from v{current.version}"
    try:
        before, served = move_and_serve(
            registry, engine, resources["serving"], args.model, args.alias, version, ACTOR, reason
        )
    except RolloutFailed as exc:
        return 1, mask(str(exc))  # it may quote the scoring server's log
    moved = f"{args.model}@{args.alias}: v{before} -> v{version}"
    if args.alias_command == "rollback":
        moved += " (rolled back)"
    return 0, moved + (f"; {served.name} {served.action} at {served.address}" if served else "")


def serve_command(settings: Settings, args) -> tuple[int, str]:
    resources = build_resources(settings, environ={})
    serving = resources["serving"]
    backend = serving.open()
    if args.serve_command == "down":
        stopped = stop_all(backend)
        return 0, "\n".join(f"stopped {o.name}" for o in stopped) or "nothing was being served"
    if args.serve_command in KINDS:
        try:
            changed = set_split(
                backend.state,
                resources["app_db"].engine,
                args.model,
                settings.production_alias,
                args.serve_command,
                args.alias,
                args.percent,
                ACTOR,
            )
        except TrafficError as exc:
            return 1, f"mlplatform serve {args.serve_command}: {exc}"
        return 0, changed
    if args.serve_command == "up":
        registry, engine = resources["mlflow"].registry(), resources["app_db"].engine
        results = reconcile_all(registry, engine, backend, serving.serve_aliases, serving.model_patterns, ACTOR)
        lines = [
            f"{model}@{alias}: FAILED {mask(str(result))}"
            if isinstance(result, RolloutFailed)
            else f"{result.name}: {result.action} v{result.version} {result.address or ''}"
            for model, alias, result in results
        ]
        failed = any(isinstance(result, RolloutFailed) for _, _, result in results)
        return (1 if failed else 0), "\n".join(lines) or "nothing to serve"
    records = sorted(backend.state.read().values(), key=lambda r: r.name)
    probed = health(backend, records)
    status = [
        {
            "model": r.model,
            "alias": r.alias,
            "version": r.upstream.version if r.upstream else None,
            "url": r.address,
            "healthy": probed[r.name],
            "server": r.name,
        }
        for r in records
    ]
    if args.json:
        return 0, json.dumps(status, indent=2)
    lines = [
        f"{s['model']}@{s['alias']} v{s['version']}  {s['url']}  {'healthy' if s['healthy'] else 'UNHEALTHY'}"
        for s in status
    ]
    return 0, "\n".join(lines) or "nothing is being served"
