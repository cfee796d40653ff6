"""The README's references stay complete: every rule, alert and worker metric is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bankguard.monitoring import rule_files
from bankguard.rules.base import RULES
from bankguard.stream_agents.metrics import WorkerMetrics

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_is_in_the_rules_reference(rule_id):
    assert f"| `{rule_id}` |" in README


def alert_names() -> list[str]:
    return [rule["alert"] for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("alert", alert_names())
def test_every_alert_is_in_the_alert_reference(alert):
    assert f"| `{alert}` |" in README


def exposed_name(family) -> str:
    """The name a family has on /metrics: counters end in ``_total``, infos in ``_info``."""
    return family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")


def test_every_worker_metric_is_in_the_metrics_reference():
    names = {exposed_name(family) for family in WorkerMetrics().registry.collect()
             if not family.name.startswith("process")}
    missing = sorted(name for name in names if f"| `{name}` |" not in README)
    assert not missing, f"undocumented metrics: {missing}"


def command_paths() -> list[str]:
    """Every command of the CLI, as a user types it (``rules publish``, ``backtest``...)."""
    from bankguard.cli import app

    paths = [command.name or command.callback.__name__ for command in app.registered_commands]
    paths += [f"{group.name} {command.name or command.callback.__name__}"
              for group in app.registered_groups for command in group.typer_instance.registered_commands]
    return sorted(paths)


@pytest.mark.parametrize("command", command_paths())
def test_every_command_is_in_the_commands_table(command):
    assert f"| `bankguard {command}" in README
