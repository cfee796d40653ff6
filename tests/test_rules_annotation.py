"""The dashboards mark each rules change: the annotation query, evaluated by the real
Prometheus engine (promtool) over series shaped as workers export them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from bankguard.dashboards.grafana.annotations import RULES_CHANGES
from bankguard.dashboards.grafana.build import JSON_DIR
from bankguard.monitoring import find_binary

# Two workers, one sample a minute (``_xN``: N minutes without; ``1xN``: N + 1 samples).
# w1 runs version a, then b from minute 10 (the old series goes stale as the
# info metric's label changes); w2 switches at minute 11, and is down from minute 14 to 17.
SERIES = [
    {"series": 'bankguard_rules_config_info{instance="w1", version="a"}', "values": "1x9 stale"},
    {"series": 'bankguard_rules_config_info{instance="w1", version="b"}', "values": "_x10 1x20"},
    {"series": 'bankguard_rules_config_info{instance="w2", version="a"}', "values": "1x10 stale"},
    {"series": 'bankguard_rules_config_info{instance="w2", version="b"}', "values": "_x11 1x2 stale _x2 1x12"},
]


def case(minute: int, versions: dict[str, int]) -> dict:
    return {"expr": "bankguard:rules_change", "eval_time": f"{minute}m",
            "exp_samples": [{"labels": f'bankguard:rules_change{{version="{v}"}}', "value": n}
                            for v, n in versions.items()]}


@pytest.mark.broker
def test_one_marker_per_rules_change_not_per_worker_or_restart(tmp_path: Path):
    promtool = find_binary("promtool")
    if promtool is None:
        pytest.fail("promtool not on PATH: run scripts/install-system-packages.sh as root")
    rules = {"groups": [{"name": "annotation", "rules": [{"record": "bankguard:rules_change", "expr": RULES_CHANGES}]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": SERIES,
        "promql_expr_test": [
            case(0, {"a": 2}),  # first seen
            case(5, {}),  # steady: no marker
            case(10, {"b": 1}),  # the change, on the first worker
            case(11, {"b": 2}),  # the second follows, within the same marker
            case(12, {}),  # b was already there two minutes before
            case(18, {}),  # w2 back after a restart: the version was never gone
        ]}]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", str(tmp_path / "tests.yml")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("uid", ["bankguard-rules", "bankguard-overview"])
def test_the_dashboards_carry_the_marker(uid: str):
    board = json.loads((JSON_DIR / f"{uid}.json").read_text(encoding="utf-8"))
    [annotation] = [a for a in board["annotations"]["list"] if a["name"] == "Rules changes"]
    assert annotation["expr"] == RULES_CHANGES and annotation["enable"] is True
    assert annotation["datasource"] == {"type": "prometheus", "uid": "bankguard-prometheus"}
    assert annotation["titleFormat"] == "rules {{version}}" and annotation["tagKeys"] == "version"
