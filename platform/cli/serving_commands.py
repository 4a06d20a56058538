"""``mlplatform alias ...`` and ``mlplatform serve ...``: aliases with history, and the servers of this home."""

from __future__ import annotations

import getpass
import json

from mlplatform.aliases import move_alias
from mlplatform.appdb.alias_history import history, previous_version
from mlplatform.appdb.engine import engine_for
from mlplatform.resources.mlflow_tracking import MlflowTracking
from mlplatform.resources.serving import ServingResource
from mlplatform.serving.desired import desired_servers
from mlplatform.serving.reconcile import healthy, stop_all
from mlplatform.serving.rollout import RolloutFailed, roll_out
from mlplatform.settings import Settings

ACTOR = f"cli:{getpass.getuser()}"


def _serving(settings: Settings) -> ServingResource:
    import os

    return ServingResource(home=str(settings.home), backend=os.environ["MLPLATFORM_SERVING_BACKEND"],
                           aliases=",".join(settings.serve_aliases), docker_image=os.environ["MLPLATFORM_IMAGE"],
                           docker_network=os.environ["MLFLOW_SERVE_NETWORK"])


def alias_command(settings: Settings, args) -> tuple[int, str]:
    tracking, engine = MlflowTracking.from_settings(settings), engine_for(settings.app_db_uri)
    tracking.activate()
    if args.alias_command == "history":
        changes = history(engine, args.model)
        if args.json:
            return 0, json.dumps(changes, default=str, indent=2)
        lines = [f"{c['changed_at']}  {c['alias']:<12} v{c['from_version']} -> v{c['to_version']}  {c['actor']}: {c['reason']}"
                 for c in changes]
        return 0, "\n".join(lines) or f"no alias changes recorded for {args.model}"
    if args.alias_command == "set":
        before = move_alias(tracking, engine, args.model, args.alias, args.version, ACTOR, "set by hand")
        return 0, f"{args.model}@{args.alias}: v{before} -> v{args.version}"
    current = tracking.require_alias(args.model, args.alias)
    previous = previous_version(engine, args.model, args.alias, int(current.version))
    if previous is None:
        return 1, f"{args.model}@{args.alias} (v{current.version}) has no earlier version in the alias history"
    move_alias(tracking, engine, args.model, args.alias, previous, ACTOR, f"rollback from v{current.version}")
    return 0, f"{args.model}@{args.alias}: v{current.version} -> v{previous} (rolled back)"


def serve_command(settings: Settings, args) -> tuple[int, str]:
    serving = _serving(settings)
    backend = serving.open()
    if args.serve_command == "down":
        stopped = stop_all(backend)
        return 0, "\n".join(f"stopped {o.name}" for o in stopped) or "nothing was being served"
    if args.serve_command == "up":
        tracking, engine = MlflowTracking.from_settings(settings), engine_for(settings.app_db_uri)
        tracking.activate()
        desired = desired_servers(tracking.client(), serving.serve_aliases)
        lines, failed = [], False
        for record in backend.state.read().values():  # servers whose model@alias is no longer wanted
            if record.alias not in desired.get(record.model, {}):
                desired.setdefault(record.model, {})[record.alias] = None
        for model, held in sorted(desired.items()):
            for alias, version in sorted(held.items()):
                try:
                    outcome = roll_out(tracking, engine, backend, model, alias, version, None, ACTOR)
                    lines.append(f"{outcome.name}: {outcome.action} v{outcome.version} {outcome.address or ''}")
                except RolloutFailed as exc:
                    failed = True
                    lines.append(f"{model}@{alias}: FAILED {exc}")
        return (1 if failed else 0), "\n".join(lines) or "nothing to serve"
    status = [
        {"model": r.model, "alias": r.alias, "version": r.upstream.version if r.upstream else None,
         "url": r.address, "healthy": healthy(backend, r), "server": r.name}
        for r in sorted(backend.state.read().values(), key=lambda r: r.name)
    ]
    if args.json:
        return 0, json.dumps(status, indent=2)
    lines = [f"{s['model']}@{s['alias']} v{s['version']}  {s['url']}  {'healthy' if s['healthy'] else 'UNHEALTHY'}" for s in status]
    return 0, "\n".join(lines) or "nothing is being served"
