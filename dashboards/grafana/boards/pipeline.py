"""Pipeline health: is anything stuck, dropping data or restarting?

For the SRE on call: consumer lag, dead letters, producer delivery failures,
worker liveness and restarts, batch sizes, state size and process resources.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import RATE, SCENARIO, graph, new_dashboard, query, row, scenario_variable, single_stat

UID = "bankguard-pipeline"

WORKER = 'job="bankguard-worker"'


def _batch_quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate(bankguard_batch_events_bucket[{RATE}])))"


def dashboard() -> Dashboard:
    return (
        new_dashboard(UID, "bankguard / Pipeline health",
                      "Consumer lag, dead letters, delivery failures, worker liveness, batches, state, resources.")
        .with_variable(scenario_variable())
        .with_row(row("Liveness"))
        .with_panel(single_stat("Workers up", query(f"sum(up{{{WORKER}}})"),
                                steps=((None, "red"), (1, "green"))))
        .with_panel(single_stat("Worker restarts (1h)", query(
            f"sum(changes(process_start_time_seconds{{{WORKER}}}[1h]))"),
            steps=((None, "green"), (1, "orange"), (3, "red")),
            description="Process start-time changes over the last hour, all workers together."))
        .with_panel(single_stat("Max consumer lag", query("max(bankguard_consumer_lag)"),
                                steps=((None, "green"), (1000, "orange"), (10000, "red"))))
        .with_panel(single_stat("Producer delivery failures/s", query(
            f"sum(rate(bankguard_producer_delivery_failures_total{{{SCENARIO}}}[{RATE}]))"),
            unit="cps", steps=((None, "green"), (0.001, "red"))))
        .with_row(row("Flow"))
        .with_panel(graph("Consumer lag by topic", [query(
            "sum by (topic) (bankguard_consumer_lag)", "{{topic}}")], legend_table=True,
            description="Messages behind the end of each topic, summed over partitions and workers."))
        .with_panel(graph("Dead letters by scenario and reason", [query(
            f"sum by (scenario, reason) (rate(bankguard_events_rejected_total{{{SCENARIO}}}[{RATE}]))",
            "{{scenario}} {{reason}}")], unit="cps", stacked=True))
        .with_panel(graph("Producer delivery failures", [query(
            f"sum by (scenario) (rate(bankguard_producer_delivery_failures_total{{{SCENARIO}}}[{RATE}]))",
            "{{scenario}}")], unit="cps", stacked=True,
            description="Events the broker did not acknowledge; they are lost unless re-sent."))
        .with_panel(graph("Produced vs consumed", [
            query(f"sum(rate(bankguard_producer_events_total{{{SCENARIO}}}[{RATE}]))", "produced"),
            query(f"sum(rate(bankguard_events_total{{{SCENARIO}}}[{RATE}]))", "consumed")], unit="cps"))
        .with_row(row("Workers"))
        .with_panel(graph("Targets up", [query(
            'up{job=~"bankguard-worker|bankguard-producer"}', "{{job}} {{instance}}")],
            max_val=1, description="1 when Prometheus scraped the target, 0 when it did not."))
        .with_panel(graph("Worker restarts", [query(
            f"changes(process_start_time_seconds{{{WORKER}}}[1h])", "{{instance}}")],
            description="Restarts in the trailing hour, per worker."))
        .with_panel(graph("Batch size", [
            query(_batch_quantile(0.5), "p50"), query(_batch_quantile(0.99), "p99"),
            query(f"sum(rate(bankguard_batch_events_sum[{RATE}])) / sum(rate(bankguard_batch_events_count[{RATE}]))",
                  "mean")], description="Events per processed batch; small batches under load mean overhead."))
        .with_panel(graph("State entities", [query(
            "sum by (instance) (bankguard_state_entities)", "{{instance}}")],
            description="Entities held in each worker's live state."))
        .with_panel(graph("Worker CPU", [query(
            f"rate(process_cpu_seconds_total{{{WORKER}}}[{RATE}])", "{{instance}}")],
            unit="percentunit", description="1 = one full core."))
        .with_panel(graph("Worker memory (RSS)", [query(
            f"process_resident_memory_bytes{{{WORKER}}}", "{{instance}}")], unit="bytes"))
    )
