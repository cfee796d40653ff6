"""The image builds from exactly what the Dockerfile copies (no Docker engine runs here):
the COPY lines, applied to a clean checkout in a temporary directory, must build a wheel
that installs, imports and runs ``bankguard --help``."""

from __future__ import annotations

import pytest

import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY line of the Dockerfile."""
    found = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, destination = shlex.split(line)[1:]
            assert not any(arg.startswith("--") for arg in sources), f"unsupported COPY option: {line}"
            found.append((sources, destination))
    return found


def tracked(path: str) -> list[str]:
    """Files of a clean checkout under ``path`` (nothing built or cached locally)."""
    out = subprocess.run(["git", "ls-files", "--", path], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.split()


def build_context(root: Path) -> None:
    """What ``WORKDIR /src`` holds after the COPY lines (Docker's rules: a folder's contents go
    into the destination; files go into it when it ends with ``/``, else become it)."""
    for sources, destination in copies():
        for source in sources:
            files = tracked(source)
            assert files, f"Dockerfile copies {source}, which the repository does not have"
            for name in files:
                if (REPO / source).is_dir():
                    target = root / destination / Path(name).relative_to(source)
                elif destination.endswith("/"):
                    target = root / destination / Path(name).name
                else:
                    target = root / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, target)


@pytest.mark.broker  # runs a `bankguard` command
def test_the_package_builds_and_runs_from_exactly_what_the_dockerfile_copies(tmp_path):
    context = tmp_path / "src"
    build_context(context)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(wheels), str(context)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = wheels.glob("bankguard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("bankguard/rules/default_rules.yaml", "bankguard/schemas/alert.v2.json",
                   "bankguard/backtest/cli.py", "bankguard/stream_agents/web.py",
                   "bankguard/dashboards/alerting/bankguard.rules.yml"):
        assert needed in names, f"the wheel lacks {needed}"
    assert any(name.startswith("bankguard/models/artifacts/") and name.endswith(".onnx") for name in names)

    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                                "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    # The dependencies come from this environment; bankguard itself only from the wheel.
    env = os.environ | {"PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", ("import bankguard.cli, bankguard.rules.signing as s; "
                             "print(s.__file__)")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert Path(where.stdout.strip()).is_relative_to(site)
    helped = subprocess.run([sys.executable, "-m", "bankguard", "--help"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "backtest" in helped.stdout, helped.stderr[-2000:]
