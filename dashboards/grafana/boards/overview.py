"""Overview: is the pipeline keeping up, and where is risk concentrated right now?

The first dashboard an SRE or risk-operations analyst opens: throughput, alerts,
the high-risk ratio per scenario against its 0.2 limit, an hour-by-hour risk map
and latency against the 100 ms SLO.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..annotations import rules_changes
from ..panels import (HIGH_RISK_THRESHOLD, LATENCY_SLO_S, RATE, SCENARIO, graph, new_dashboard,
                      query, row, scenario_variable, single_stat, value_timeline)

UID = "bankguard-overview"

_LATENCY_BUCKETS = f"bankguard_event_latency_seconds_bucket{{{SCENARIO}}}"
_RISK_STEPS = ((None, "green"), (HIGH_RISK_THRESHOLD / 2, "yellow"), (HIGH_RISK_THRESHOLD, "red"))


def _quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({_LATENCY_BUCKETS}[{RATE}])))"


def dashboard() -> Dashboard:
    within_slo = (f'sum(rate(bankguard_event_latency_seconds_bucket{{{SCENARIO}, le="{LATENCY_SLO_S}"}}[{RATE}]))'
                  f" / sum(rate(bankguard_event_latency_seconds_count{{{SCENARIO}}}[{RATE}]))")
    return (
        new_dashboard(UID, "bankguard / Overview",
                      "Throughput, alerts, high-risk ratio and latency across the selected scenarios.")
        .with_variable(scenario_variable())
        .annotation(rules_changes())
        .with_row(row("Now"))
        .with_panel(single_stat("Events/s", query(
            f"sum(rate(bankguard_events_total{{{SCENARIO}}}[{RATE}]))"), unit="cps"))
        .with_panel(single_stat("Alerts/s", query(
            f"sum(rate(bankguard_alerts_total{{{SCENARIO}}}[{RATE}]))"), unit="cps",
            steps=((None, "green"), (1, "orange"))))
        .with_panel(single_stat("Dead letters/s", query(
            f"sum(rate(bankguard_events_rejected_total{{{SCENARIO}}}[{RATE}]))"), unit="cps",
            steps=((None, "green"), (0.01, "red"))))
        .with_panel(single_stat("Events within the latency SLO", query(within_slo), unit="percentunit",
                                description=f"Share of events scored within {LATENCY_SLO_S * 1000:g} ms "
                                            "of their event time.",
                                steps=((None, "red"), (0.95, "orange"), (0.99, "green"))))
        .with_row(row("Flow"))
        .with_panel(graph("Throughput by scenario", [query(
            f"sum by (scenario) (rate(bankguard_events_total{{{SCENARIO}}}[{RATE}]))", "{{scenario}}")],
            unit="cps", stacked=True, description="Events consumed and validated per second."))
        .with_panel(graph("Alert rate by severity", [query(
            f"sum by (severity) (rate(bankguard_alerts_total{{{SCENARIO}}}[{RATE}]))", "{{severity}}")],
            unit="cps", stacked=True))
        .with_row(row("Risk"))
        .with_panel(graph("High-risk ratio by scenario", [query(
            f"avg by (scenario) (bankguard_high_risk_ratio{{{SCENARIO}}})", "{{scenario}}")],
            unit="percentunit", threshold=HIGH_RISK_THRESHOLD, max_val=1, legend_table=True,
            description=f"Share of recent events scored high-risk; the dashed line is the "
                        f"{HIGH_RISK_THRESHOLD:g} limit.", width=24))
        .with_panel(value_timeline("High-risk ratio by scenario and hour", query(
            f"avg by (scenario) (avg_over_time(bankguard_high_risk_ratio{{{SCENARIO}}}[1h]))",
            "{{scenario}}", interval="1h"), unit="percentunit", steps=_RISK_STEPS, time_from="24h",
            description="Hourly average of the high-risk ratio over the last 24 hours, one lane per scenario."))
        .with_row(row("Latency"))
        .with_panel(graph("Event latency p50 / p99", [
            query(_quantile(0.5), "p50"), query(_quantile(0.99), "p99")],
            unit="s", threshold=LATENCY_SLO_S, width=24,
            description=f"From event time to scoring; the dashed line is the {LATENCY_SLO_S:g} s SLO."))
    )
