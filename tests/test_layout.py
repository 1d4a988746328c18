"""The repository layout works: actors/ and http/ import as oncue.actors and oncue.http.

A folder named http at the root must never shadow the standard library's http (which h11,
hypercorn and httpx import), whether code runs from the root, under pytest, or installed.
"""

from __future__ import annotations

import http
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]

WHERE = """
import http, http.client, json, oncue, oncue.actors, oncue.http, oncue.http.client
print(json.dumps({
    "http": http.__file__,
    "oncue": oncue.__file__,
    "oncue.actors": oncue.actors.__file__,
    "oncue.http": list(oncue.http.__path__),
    "Client": oncue.Client is oncue.http.client.Client,
}))
"""


def run(argv: list[str], cwd: Path, timeout: float = 60) -> str:
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{argv} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr[-4000:]}"
    )
    return result.stdout


def is_inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_http_folder_is_a_namespace_portion_never_a_package() -> None:
    # With an http/__init__.py, code run from the root would import it instead of the stdlib's.
    assert (REPO / "http").is_dir()
    assert not (REPO / "http" / "__init__.py").exists()


def test_stdlib_http_and_oncue_http_both_import_from_the_repo_root() -> None:
    where = json.loads(run([sys.executable, "-c", WHERE], cwd=REPO))
    assert not is_inside(where["http"], REPO)
    assert is_inside(where["http"], Path(json.__file__).parent.parent)  # the stdlib's folder
    assert where["oncue.http"] == [str(REPO / "http")]
    assert where["oncue"] == str(REPO / PACKAGE_DIRS["oncue"] / "__init__.py")
    assert where["oncue.actors"] == str(REPO / "actors" / "__init__.py")
    assert where["Client"]


def test_no_root_folder_is_named_after_the_package() -> None:
    # An oncue/ folder with an __init__.py would be imported first from the root and hide
    # the mapped sub-packages; `oncue` itself lives in the folder pyproject maps it to.
    assert not (REPO / "oncue").exists()
    assert PACKAGE_DIRS["oncue"] != "oncue"
    assert (REPO / PACKAGE_DIRS["oncue"] / "__main__.py").is_file()


def test_every_package_is_typed() -> None:
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in ("oncue", "oncue.actors", "oncue.http"):  # sub-packages are typed with them
        assert (REPO / PACKAGE_DIRS[package] / "py.typed").is_file(), package
        assert "py.typed" in package_data.get(package, []), package  # oncue.http: dashboard too


def test_this_pytest_session_sees_the_standard_library_http() -> None:
    assert not is_inside(http.__file__, REPO)


def test_pytest_collects_from_the_repo_root() -> None:
    pytest_argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    out = run([*pytest_argv, "--collect-only", "-q", "tests/test_layout.py"], cwd=REPO)
    assert "test_layout.py::test_pytest_collects_from_the_repo_root" in out


def copy_sources(destination: Path) -> Path:
    """Copy what a build reads: pyproject, README and the package folders (not bench/, .venv)."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, destination / name)
    for folder in {folder.split("/")[0] for folder in PACKAGE_DIRS.values()}:
        shutil.copytree(
            REPO / folder, destination / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return destination


IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import oncue, oncue.actors, oncue.http
assert oncue.Client and oncue.open_engine and oncue.__version__ != "0+unknown"
names = []
for package in (oncue.actors, oncue.http):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        names.append(module.name)
files = [oncue.__file__, oncue.actors.__file__, *oncue.http.__path__]
print(json.dumps({"modules": names, "files": files}))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_wheel_installs_into_a_fresh_venv_and_imports_from_elsewhere(tmp_path: Path) -> None:
    sources = copy_sources(tmp_path / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    dist = tmp_path / "dist"
    run([*pip, "wheel", "-q", "--no-deps", "-w", str(dist), str(sources)], tmp_path, 180)
    [wheel] = dist.glob("oncue-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([*pip, "--python", str(python), "install", "-q", str(wheel)], cwd=tmp_path, timeout=240)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report = json.loads(run([str(python), "-c", IMPORT_EVERYTHING], cwd=elsewhere))
    assert all(is_inside(path, venv) for path in report["files"]), report["files"]
    # Every module in the folders made it into the wheel (an unlisted sub-package would not).
    installed = set(report["modules"])
    site = Path(report["files"][0]).parent  # oncue/ in the venv's site-packages
    for package, folder in PACKAGE_DIRS.items():
        for source in (REPO / folder).glob("*.py"):
            if package == "oncue":  # not imported: its __main__ would run the CLI
                assert (site / source.name).is_file(), f"{source} is not in the wheel"
            elif source.stem != "__init__":
                assert f"{package}.{source.stem}" in installed, f"{source} is not in the wheel"
    # The dashboard's files are package data: in the wheel too (docs/dashboard.md).
    http_folders = [Path(path) for path in report["files"][1:]]
    for source in (REPO / "http" / "dashboard").iterdir():
        shipped = [folder / "dashboard" / source.name for folder in http_folders]
        assert any(path.is_file() for path in shipped), f"{source} is not in the wheel"
    run([str(venv / "bin" / "oncue"), "--help"], cwd=elsewhere)
    assert run([str(python), "-m", "oncue", "--version"], cwd=elsewhere).startswith("oncue ")
    for typed in ("py.typed", "actors/py.typed", "http/py.typed"):
        assert (site / typed).is_file(), f"{typed} is not in the wheel"
