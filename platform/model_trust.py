"""What the platform agrees to deserialize: its own kind of model and nothing else.

A registered version is code as much as data: MLflow loads whatever its ``MLmodel`` names (a loader module, pickled
objects, the skops types the file itself declares trusted, code folders). Before a version is loaded or served, its
files are checked against the platform's policy: the scikit-learn flavor, skops serialization, no code paths, and
every type skops would construct from NumPy, SciPy or scikit-learn. Anyone who can write to the registry can
register a version; only one that passes this check runs here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")


class UntrustedModel(RuntimeError):
    """A model version the platform refuses to load or serve; the message says why."""


def check_model_folder(folder: Path, what: str) -> None:
    """Raise ``UntrustedModel`` unless the MLflow model in ``folder`` is one the platform would have written."""
    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UntrustedModel(f"{what}: no readable MLmodel file ({type(exc).__name__})") from None
    flavors = mlmodel.get("flavors") or {} if isinstance(mlmodel, dict) else {}
    pyfunc, sklearn_flavor = flavors.get("python_function") or {}, flavors.get("sklearn") or {}
    if pyfunc.get("loader_module") != "mlflow.sklearn" or not sklearn_flavor:
        raise UntrustedModel(f"{what}: not a scikit-learn model (loader {pyfunc.get('loader_module')!r})")
    if sklearn_flavor.get("serialization_format") != "skops":
        raise UntrustedModel(f"{what}: serialized as {sklearn_flavor.get('serialization_format')!r}, not skops")
    if pyfunc.get("code") or sklearn_flavor.get("code") or (folder / "code").exists():
        raise UntrustedModel(f"{what}: ships code of its own")
    declared = sklearn_flavor.get("skops_trusted_types") or []
    import skops.io  # noqa: PLC0415 - about 2 s to import (it scans scikit-learn): paid by the processes that check

    try:
        found = skops.io.get_untrusted_types(file=folder / str(sklearn_flavor.get("pickled_model", "model.skops")))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is refused, whatever skops raised
        raise UntrustedModel(f"{what}: its skops file cannot be inspected ({type(exc).__name__})") from None
    foreign = sorted(t for t in {*declared, *found} if not str(t).startswith(TRUSTED_MODULES))
    if foreign:
        raise UntrustedModel(f"{what}: would construct types outside scikit-learn/NumPy/SciPy: {foreign[:5]}")
