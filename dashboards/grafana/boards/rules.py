"""Rules: which rules fire, at what severity, and which configuration is live?

Rule configurations are published at runtime (``bankguard rules publish``); this
board shows which version each worker runs and whether updates were rejected.
Model detectors (``model:...``) are left to the models dashboard.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.common import BigValueTextMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ..annotations import rules_changes
from ..panels import (RATE, SCENARIO, graph, new_dashboard, organize, query, row, scenario_variable,
                      single_stat, table_panel)

UID = "bankguard-rules"

_RULE_ALERTS = f'bankguard_alerts_total{{{SCENARIO}, detector!~"model:.*"}}'


def dashboard() -> Dashboard:
    return (
        new_dashboard(UID, "bankguard / Rules",
                      "Rule hits by rule and severity, the active rules configuration, rejected updates.")
        .with_variable(scenario_variable())
        .annotation(rules_changes())
        .with_row(row("Configuration"))
        .with_panel(single_stat("Workers per active rules version", query(
            "count by (version) (bankguard_rules_config_info)", "{{version}}", instant=True),
            text_mode=BigValueTextMode.VALUE_AND_NAME, width=12,
            description="More than one version means a rollout in progress (or a worker that missed it)."))
        .with_panel(single_stat("Rejected config updates (range)", query(
            "sum(increase(bankguard_rules_config_rejected_total[$__range]))"),
            steps=((None, "green"), (1, "red")), width=12,
            description="Updates on the control topic that were refused (unsigned, wrongly signed, invalid, "
                        "silencing a scenario, stale): dead-lettered; workers keep the previous version."))
        .with_row(row("Hits"))
        .with_panel(graph("Hits by rule", [query(
            f"sum by (detector) (rate({_RULE_ALERTS}[{RATE}]))", "{{detector}}")],
            unit="cps", stacked=True, legend_table=True))
        .with_panel(graph("Hits by severity", [query(
            f"sum by (severity) (rate({_RULE_ALERTS}[{RATE}]))", "{{severity}}")],
            unit="cps", stacked=True))
        .with_panel(table_panel("Hits by rule and severity (range)", [query(
            f"sum by (detector, severity) (increase({_RULE_ALERTS}[$__range])) > 0",
            instant=True, fmt=PromQueryFormat.TABLE)],
            transformations=[organize(rename={"detector": "rule", "Value": "hits"},
                                      order=("detector", "severity", "Value"))]))
        .with_panel(graph("Rejected config updates", [query(
            f"sum(increase(bankguard_rules_config_rejected_total[{RATE}]))", "rejected")]))
    )
