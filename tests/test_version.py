"""The version is set once, in pyproject.toml, and every reader agrees with it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

import bankguard
from bankguard.cli import app

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def project_version() -> str:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]


def test_the_package_reports_the_pyproject_version():
    assert bankguard.__version__ == project_version()


def test_bankguard_version_prints_it_and_exits_zero():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bankguard {project_version()}"


def test_no_other_file_sets_a_version():
    init = (Path(bankguard.__file__)).read_text(encoding="utf-8")
    assert project_version() not in init
