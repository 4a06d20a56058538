"""What should be served: every registered model (all pages) and every alias in MLFLOW_SERVE_ALIASES it holds."""

from __future__ import annotations

import fnmatch

from mlplatform.model_registry import ModelRegistry


def desired_servers(
    registry: ModelRegistry, aliases: tuple[str, ...], models: tuple[str, ...]
) -> dict[str, dict[str, int]]:
    """``{model: {alias: version}}`` for the registered models whose names match ``models`` (glob patterns, e.g.
    ``mlplatform_*``): a model someone else registered is never served. Aliases compare exactly, case included."""
    desired: dict[str, dict[str, int]] = {}
    for model in registry.registered_models():
        held = {
            alias: int(version)
            for alias, version in (model.aliases or {}).items()
            if is_served(model.name, alias, aliases, models)
        }
        if held:
            desired[model.name] = held
    return desired


def is_served(model: str, alias: str, aliases: tuple[str, ...], models: tuple[str, ...]) -> bool:
    """Whether the platform serves ``model``@``alias``: the alias is listed and the name matches a pattern."""
    return alias in aliases and any(fnmatch.fnmatchcase(model, pattern) for pattern in models)


def changes(served: dict, desired: dict) -> list[tuple[str, str, int | None, int | None]]:
    """(model, alias, old version, new version) for every model@alias whose version differs, in a stable order."""
    pairs = {(m, a) for state in (served, desired) for m, held in state.items() for a in held}
    return [
        (model, alias, served.get(model, {}).get(alias), desired.get(model, {}).get(alias))
        for model, alias in sorted(pairs)
        if served.get(model, {}).get(alias) != desired.get(model, {}).get(alias)
    ]
