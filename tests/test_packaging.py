"""The wheel is what users install: its own content must be complete, whatever the editable install hides.

The wheel is built from a copy of the source tree (nothing written into the repository) and compared with that
same copy, file by file, so the check follows the tree as packages are added. Then it is installed without
dependencies into a fresh venv whose only link to the project venv is a ``.pth`` line that makes the third-party
dependencies importable (``.pth`` files in that folder, such as the editable install's finder, are not run), and the
CLI and every module are run from a folder outside the repository.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
NAME, VERSION = PYPROJECT["project"]["name"], PYPROJECT["project"]["version"]
# What a wheel never carries from the tree: bytecode, editor and OS leftovers.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*~")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _source_files(copy: Path) -> set[str]:
    """Where each file of the mapped folders of a source copy (made with ``IGNORED``) must land in the wheel."""
    return {
        f"{package.replace('.', '/')}/{path.relative_to(copy / folder).as_posix()}"
        for package, folder in PACKAGE_DIR.items()
        for path in (copy / folder).rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """(wheel, the source copy it was built from)."""
    folder = tmp_path_factory.mktemp("packaging")
    source = folder / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for mapped in sorted(set(PACKAGE_DIR.values())):
        shutil.copytree(REPO_ROOT / mapped, source / mapped, ignore=IGNORED)
    for requirement in map(Requirement, PYPROJECT["build-system"]["requires"]):
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            installed = None
        assert installed and requirement.specifier.contains(installed, prereleases=True), (
            f"the project venv has {requirement.name} {installed}, the build needs {requirement}: "
            "`make test-quick` (or `make test`) installs the test extra, which brings it"
        )
    # No build isolation: offline, and seconds instead of a download of the build backend per run.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(folder / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = (folder / "dist").glob(f"{NAME}-{VERSION}-*.whl")
    return wheel, source


@pytest.fixture(scope="module")
def fresh_venv(build, tmp_path_factory) -> Path:
    """A new venv (no system site-packages) holding the wheel alone; the dependencies come from the project venv."""
    wheel, _ = build
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # This interpreter's site-packages folders (the project venv's), appended after the fresh venv's own: the
    # wheel's `mlplatform` comes first, and the editable install's finder there is never started.
    project = [path for path in sys.path if Path(path).name in ("site-packages", "dist-packages")]
    assert project, sys.path
    (Path(site) / "project_dependencies.pth").write_text("".join(f"{path}\n" for path in project))
    return venv


def _run_in(venv: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    environment["PYTHONNOUSERSITE"] = "1"
    cwd.mkdir(exist_ok=True)
    assert not cwd.resolve().is_relative_to(REPO_ROOT), "run outside the repository, or its folders could be imported"
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=240)


def test_wheel_holds_every_file_of_the_tree_and_nothing_else(build):
    wheel, source = build
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"{NAME}-{VERSION}.dist-info"
    content = {n for n in names if not n.startswith(f"{dist_info}/")}
    expected = set(_source_files(source))
    assert any(name.startswith("mlplatform/bench/") for name in expected)
    missing, extra = sorted(expected - content), sorted(content - expected)
    assert not missing, (
        f"in the tree but not in the wheel (an undiscovered package, or data files that need "
        f"[tool.setuptools.package-data]): {missing}"
    )
    assert not extra, f"in the wheel but not in the tree: {extra}"
    assert {name.split("/")[0] for name in names} == {"mlplatform", dist_info}
    assert not any(name == "platform" or name.startswith("platform/") for name in names)
    # The stdlib owns `platform`: the core package's folder has no __init__.py, in the tree or in the wheel.
    assert not (REPO_ROOT / PACKAGE_DIR["mlplatform"] / "__init__.py").exists()
    assert "mlplatform/__init__.py" not in names
    top_level = zipfile.ZipFile(wheel).read(f"{dist_info}/top_level.txt").decode().split()
    assert top_level == ["mlplatform"]


def test_installed_wheel_runs_the_cli_and_imports_every_module(build, fresh_venv, tmp_path):
    _, source = build
    elsewhere = tmp_path / "elsewhere"
    for args, expected in ([["--help"], "bench"], [["bench", "--help"], "switch"]):
        result = _run_in(fresh_venv, elsewhere, str(fresh_venv / "bin" / "mlplatform"), *args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert expected in result.stdout and "usage: mlplatform" in result.stdout
    modules = sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in _source_files(source)
        if name.endswith(".py")
    )
    assert "mlplatform.bench.switch" in modules
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name)\n"
        "    print(name, module.__file__)\n"
    )
    result = _run_in(fresh_venv, elsewhere, str(fresh_venv / "bin" / "python"), "-c", script, *modules)
    assert result.returncode == 0, result.stderr[-3000:]
    locations = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert sorted(locations) == modules
    site = str(next((fresh_venv / "lib").glob("python*/site-packages")))
    wrong = {name: path for name, path in locations.items() if not path.startswith(site)}
    assert not wrong, f"imported from outside the fresh venv: {wrong}"


def _imports(root: Path) -> dict[str, set[str]]:
    """Top-level module name -> files importing it (absolute imports anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for folder in sorted(set(PACKAGE_DIR.values())):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(root)))
    return found


def test_every_import_is_a_declared_dependency():
    declared = {_normalize(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    distributions = packages_distributions()
    own = {package.split(".")[0] for package in PACKAGE_DIR}
    third_party = {
        name: files
        for name, files in _imports(REPO_ROOT).items()
        if name not in sys.stdlib_module_names and name not in own
    }
    assert {"dagster", "mlflow", "skops"} <= set(third_party)
    unknown = {name: sorted(files) for name, files in third_party.items() if name not in distributions}
    assert not unknown, f"imported but installed by no distribution in the project venv: {unknown}"
    undeclared = {
        name: (distributions[name], sorted(files))
        for name, files in third_party.items()
        if not declared & {_normalize(d) for d in distributions[name]}
    }
    assert not undeclared, f"imported but not in [project] dependencies of pyproject.toml: {undeclared}"
