"""Type-check bankguard under the names it is installed as.

The source folders install under other names (``producers/`` is ``bankguard.producers``,
see ``[tool.setuptools.package-dir]``) through an import hook that mypy cannot follow,
so mypy would see two unrelated modules for every file. This builds a tree of symlinks
laid out as the installed package (``build/typecheck/bankguard/producers`` -> ``producers``),
runs mypy on the package ``bankguard`` through it (settings in ``[tool.mypy]``), and
prints the errors under the source paths an editor opens.

Usage: ``python scripts/typecheck.py [mypy options]``; exits with mypy's status.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def package_dirs() -> dict[str, str]:
    """Installed package name -> source folder, as setuptools maps them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return mapping


def build_tree(mapping: dict[str, str]) -> dict[str, str]:
    """Lay out the symlink tree; returns tree prefix -> source prefix, longest first."""
    for name in sorted(mapping, key=lambda n: n.count(".")):
        target = TREE.joinpath(*name.split("."))
        source = ROOT / mapping[name]
        if name.count(".") == 0:  # the top package: a real folder, so subpackages can be linked into it
            target.mkdir(parents=True, exist_ok=True)
            for link in target.iterdir():
                if link.is_symlink():
                    link.unlink()
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            if target.is_symlink():
                target.unlink()
            target.symlink_to(source)
    prefixes = {f"{os.path.relpath(TREE, ROOT)}/{name.replace('.', '/')}/": f"{mapping[name]}/" for name in mapping}
    return dict(sorted(prefixes.items(), key=lambda item: -len(item[0])))


def source_paths(text: str, prefixes: dict[str, str]) -> str:
    """mypy's report with tree paths replaced by the source paths they link to."""
    lines = []
    for line in text.splitlines(keepends=True):
        for tree_prefix, source_prefix in prefixes.items():
            if line.startswith(tree_prefix):
                line = source_prefix + line[len(tree_prefix):]
                break
        lines.append(line)
    return "".join(lines)


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    prefixes = build_tree(package_dirs())
    stdout, stderr, status = api.run(["--package", "bankguard", *argv])
    sys.stdout.write(source_paths(stdout, prefixes))
    sys.stderr.write(stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
