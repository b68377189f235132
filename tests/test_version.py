"""One version number (issue 22): core/version.py, read by pyproject.toml, printed by
``--version``; the package's dependencies are requirements.txt's."""
from __future__ import annotations

import subprocess
import sys

from core.version import __version__
from tests.conftest import REPO


def requirement_lines() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_pyproject_takes_version_and_dependencies_from_their_one_home(monkeypatch):
    from setuptools.config.pyprojecttoml import read_configuration

    monkeypatch.chdir(REPO)  # where setuptools finds the packages
    project = read_configuration(REPO / "pyproject.toml", expand=True)["project"]
    assert project["version"] == __version__
    assert project["dependencies"] == requirement_lines()
    module, function = project["scripts"]["transferlab"].split(":")
    assert (module, function) == ("main", "run")  # what `python main.py` runs


def test_main_py_prints_the_version_and_library_versions():
    out = subprocess.run([sys.executable, str(REPO / "main.py"), "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"transferlab {__version__} (torch ") and "timm " in out.stdout
