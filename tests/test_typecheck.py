"""mypy checks the folders under the names they are installed as (scripts/typecheck.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# Both tests rebuild the one tree under build/: in one process, so neither sees it half-built.
pytestmark = pytest.mark.xdist_group("typecheck-tree")

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("typecheck", ROOT / "scripts" / "typecheck.py")
typecheck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(typecheck)


def test_every_installed_package_resolves_to_its_source_folder():
    mapping = typecheck.package_dirs()
    typecheck.build_tree(mapping)
    for name, folder in mapping.items():
        linked = typecheck.TREE.joinpath(*name.split("."), "__init__.py")
        assert linked.resolve() == (ROOT / folder / "__init__.py").resolve(), name


def test_errors_are_reported_at_the_source_paths():
    prefixes = typecheck.build_tree(typecheck.package_dirs())
    report = ("build/typecheck/bankguard/producers/publisher.py:82: error: x  [arg-type]\n"
              "build/typecheck/bankguard/alerts.py:1: error: y  [misc]\n"
              "Found 2 errors in 2 files (checked 183 source files)\n")
    assert typecheck.source_paths(report, prefixes).splitlines() == [
        "producers/publisher.py:82: error: x  [arg-type]",
        "bankguard/alerts.py:1: error: y  [misc]",
        "Found 2 errors in 2 files (checked 183 source files)",
    ]
