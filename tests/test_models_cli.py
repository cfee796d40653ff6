"""The model commands: one-line errors, and a quick train/report round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bankguard.models.registry import SHIPPED

pytestmark = pytest.mark.broker  # every test runs a `bankguard models` command


def models_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bankguard", "models", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(("args", "needle"), [
    (["train", "--scenarios", "credit_card,nope"], "nope"),
    (["train", "--k", "0"], "--k"),
    (["report", "--dir", "/no/such/registry"], "/no/such/registry"),
    (["report", "--bogus"], "--bogus"),
])
def test_mistakes_end_in_one_line(args, needle):
    result = models_cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert needle in result.stderr


def test_report_of_a_directory_without_a_report(tmp_path):
    result = models_cli("report", "--dir", str(tmp_path))
    assert result.returncode == 1 and "no arena report" in result.stderr and "bankguard train" in result.stderr


def test_report_json_of_the_shipped_arena():
    result = models_cli("report", "--dir", str(SHIPPED), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["profile"] == "quick" and len(report["scenarios"]) == 9
    for scenario, entry in report["scenarios"].items():
        assert entry["k"] == report["k"] == 10, scenario
        assert 0 < entry["base_rate"] < 0.05 and 0 <= entry["no_context_pr_auc"] <= 1, scenario
        for model, measures in entry["models"].items():
            assert {"pr_auc", "roc_auc", "cp_at_k"} <= set(measures), (scenario, model)


def test_report_table_marks_the_champions():
    result = models_cli("report", "--dir", str(SHIPPED))
    assert result.returncode == 0, result.stderr
    assert "Model arena" in result.stdout and "hist_gbdt" in result.stdout and "*" in result.stdout
    assert "no context" in result.stdout and "CP@10" in result.stdout
