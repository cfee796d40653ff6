"""Scenario drill-down: what is happening in one scenario, and why is it alerting?

Single-select on purpose: the panels split by detector, severity and reject reason,
which only reads well for one scenario at a time.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import (HIGH_RISK_THRESHOLD, LATENCY_SLO_S, RATE, SCENARIO, bucket_heatmap, graph,
                      new_dashboard, query, row, scenario_variable, single_stat)

UID = "bankguard-scenario"


def _rate(metric: str, by: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum"
    return f"{grouping}(rate({metric}{{{SCENARIO}}}[{RATE}]))"


def dashboard() -> Dashboard:
    p99 = f"histogram_quantile(0.99, {_rate('bankguard_event_latency_seconds_bucket', 'le')})"
    return (
        new_dashboard(UID, "bankguard / Scenario drill-down",
                      "One scenario: events, alerts by detector and severity, risk, latency, dead letters.")
        .with_variable(scenario_variable(multi=False))
        .with_row(row("$scenario"))
        .with_panel(single_stat("Events/s", query(_rate("bankguard_events_total")), unit="cps", width=5))
        .with_panel(single_stat("Alerts/s", query(_rate("bankguard_alerts_total")), unit="cps", width=5))
        .with_panel(single_stat("High-risk ratio", query(
            f"avg(bankguard_high_risk_ratio{{{SCENARIO}}})"), unit="percentunit", width=5,
            steps=((None, "green"), (HIGH_RISK_THRESHOLD, "red"))))
        .with_panel(single_stat("Latency p99", query(p99), unit="s", width=5,
                                steps=((None, "green"), (LATENCY_SLO_S, "red"))))
        .with_panel(single_stat("Dead letters/s", query(_rate("bankguard_events_rejected_total")),
                                unit="cps", width=4, steps=((None, "green"), (0.01, "red"))))
        .with_panel(graph("Events produced vs consumed", [
            query(_rate("bankguard_producer_events_total"), "produced"),
            query(_rate("bankguard_events_total"), "consumed")],
            unit="cps", description="A widening gap means the workers are falling behind."))
        .with_panel(graph("High-risk ratio", [query(
            f"avg(bankguard_high_risk_ratio{{{SCENARIO}}})", "high-risk ratio")],
            unit="percentunit", max_val=1, threshold=HIGH_RISK_THRESHOLD))
        .with_panel(graph("Alerts by detector", [query(
            _rate("bankguard_alerts_total", "detector"), "{{detector}}")],
            unit="cps", stacked=True, legend_table=True,
            description="Rule ids (large_amount, keywords, ...) and model ids (model:<scenario>:<name>)."))
        .with_panel(graph("Alerts by severity", [query(
            _rate("bankguard_alerts_total", "severity"), "{{severity}}")], unit="cps", stacked=True))
        .with_panel(bucket_heatmap(
            "Event latency distribution",
            f"sum by (le) (increase(bankguard_event_latency_seconds_bucket{{{SCENARIO}}}[{RATE}]))",
            unit="s", description=f"Events per latency bucket; the SLO bucket is {LATENCY_SLO_S:g} s."))
        .with_panel(graph("Dead letters by reason", [query(
            _rate("bankguard_events_rejected_total", "reason"), "{{reason}}")],
            unit="cps", stacked=True, description="Events sent to the dead-letter topic."))
    )
