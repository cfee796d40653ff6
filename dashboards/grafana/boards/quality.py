"""Detection quality: are the alerts right? From the evaluator's join of alerts and outcomes.

Precision of decided alerts and recall per detector against their objectives, each
champion's alert volume against its budget, daily CP@k and score drift: what an SRE
checks before trusting, or paging on, the alert stream. The figures cover the
evaluator's window of event time, so they move slowly; rules changes are marked.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ..annotations import rules_changes
from ..panels import SCENARIO, graph, new_dashboard, organize, query, row, scenario_variable, table_panel

UID = "bankguard-quality"

_PRECISION = f"max by (scenario, detector) (bankguard_detection_precision_ratio{{{SCENARIO}}})"
_DECIDED = f"max by (scenario, detector) (bankguard_detection_decided_alerts{{{SCENARIO}}})"
_PRECISION_OBJECTIVE = "scalar(max(bankguard_detection_precision_objective_ratio))"


def dashboard() -> Dashboard:
    return (
        new_dashboard(UID, "bankguard / Detection quality",
                      "Precision, recall, budget use, CP@k and score drift per detector, from confirmed outcomes.")
        .with_variable(scenario_variable())
        .annotation(rules_changes())
        .with_row(row("Are the alerts right?"))
        .with_panel(graph("Precision of decided alerts", [
            query(_PRECISION, "{{scenario}} {{detector}}"),
            query("max(bankguard_detection_precision_objective_ratio)", "objective")],
            unit="percentunit", max_val=1, legend_table=True,
            description="Of the alerted events with a confirmed outcome, the share that were fraud. The desk "
                        "works the riskiest entities first, so this reads the top of the queue first."))
        .with_panel(graph("Recall", [
            query(f'max by (scenario) (bankguard_detection_recall_ratio{{{SCENARIO}, detector="all"}})',
                  "{{scenario}}"),
            query("max(bankguard_detection_recall_objective_ratio)", "objective")],
            unit="percentunit", max_val=1,
            description="Of the confirmed frauds, the share any detector alerted on, over the days that "
                        "ended at least the longest chargeback delay ago: chargebacks are the misses and "
                        "arrive 5 to 30 days after the event, so a younger day would read near 1. Empty "
                        "until a day has matured."))
        .with_panel(table_panel("Detectors below their precision objective", [query(
            f"({_PRECISION} < {_PRECISION_OBJECTIVE}) and {_DECIDED} >= 20", instant=True,
            fmt=PromQueryFormat.TABLE)], width=12,
            description="What BankGuardDetectorPrecisionLow fires on: at least 20 decided alerts.",
            transformations=[organize(exclude=("Time",), rename={"Value": "precision"},
                                      order=("scenario", "detector", "Value"))]))
        .with_panel(graph("Decided alerts and confirmed frauds", [
            query(_DECIDED, "decided {{scenario}} {{detector}}"),
            query(f"max by (scenario) (bankguard_detection_confirmed_frauds{{{SCENARIO}}})", "frauds {{scenario}}")],
            description="The sample the ratios stand on, over the evaluation window."))
        .with_row(row("Capacity"))
        .with_panel(graph("Budget use", [query(
            f'max by (scenario, detector) (bankguard_detection_alerts_last_day{{{SCENARIO}, detector=~"model:.+"}})'
            f" / on (scenario) group_left max by (scenario) (bankguard_detection_alert_budget_last_day{{{SCENARIO}}})",
            "{{scenario}} {{detector}}")], unit="percentunit", threshold=1.0,
            description="Each champion's alerted events on the last closed day against the budget its threshold "
                        "was set for: above 100%, investigators cannot work them all."))
        .with_panel(graph("Daily CP@k", [query(
            f"max by (scenario, detector) (bankguard_detection_cp_at_k_ratio{{{SCENARIO}}})",
            "{{scenario}} {{detector}}")], unit="percentunit", max_val=1,
            description="Share of each day's k highest-scored entities confirmed compromised (k: the desk's "
                        "capacity), averaged over the days whose decisions are all in."))
        .with_row(row("Drift"))
        .with_panel(graph("Score drift (PSI)", [query(
            f"max by (scenario, model) (bankguard_model_score_psi{{{SCENARIO}}})", "{{scenario}} {{model}}")],
            threshold=0.25, width=24,
            description="Population stability index of each champion's recent scores against its validation "
                        "scores: below 0.1 stable, above 0.25 a significant shift (BankGuardScoreDrift)."))
    )
