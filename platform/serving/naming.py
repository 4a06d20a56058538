"""Names of serving endpoints: ``mlflow-serve-<model>-<alias>``, valid as Docker names and DNS labels, collision-free.

Lower-casing and replacing characters can make two model@alias pairs look alike (``Test`` and ``test``): whenever
the plain name is not exactly the model and alias, a short hash of the exact pair is appended.
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 63


def server_name(model: str, alias: str) -> str:
    raw = f"mlflow-serve-{model}-{alias}"
    name = re.sub(r"[^a-z0-9_.-]", "-", raw.lower())
    if name == raw and len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(f"{model}\0{alias}".encode()).hexdigest()[:8]
    return f"{name[: MAX_LENGTH - 9].rstrip('-_.')}-{digest}"
