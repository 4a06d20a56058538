"""What loading the code location imports: every Dagster run worker, the code server and `dagster dev` import
mlplatform.definitions, so the training and plotting libraries are imported where they are used (scikit-learn
alone costs about 1 s of each run worker's start-up, serving runs included)."""

from __future__ import annotations

import subprocess
import sys

IMPORT_AND_LIST = """
import sys
import mlplatform.definitions
print([m for m in ("sklearn", "matplotlib", "skops", "mlflow.sklearn") if m in sys.modules])
"""


def test_the_code_location_imports_no_training_library(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_LIST], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
