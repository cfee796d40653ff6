"""The evaluator's Prometheus metrics, read from its latest figures at scrape time.

Names follow the Prometheus naming guide: ``_ratio`` for shares, plain nouns for counts over
the evaluation window (gauges: they fall as days leave the window), ``_total`` for counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bankguard.settings import EvaluatorSettings
from bankguard.stream_agents.evaluator.quality import ScenarioQuality


@dataclass
class EvaluatorState:
    """What the collector serves: the figures of the last refresh and the records read so far."""

    figures: dict[str, ScenarioQuality] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=lambda: {"alert": 0, "outcome": 0, "event": 0})
    unreadable: dict[str, int] = field(default_factory=lambda: {"alert": 0, "outcome": 0})
    clock_ms: int | None = None


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class QualityCollector(Collector):
    def __init__(self, state: EvaluatorState, settings: EvaluatorSettings, k: int) -> None:
        self.state = state
        self.settings = settings
        self.k = k

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        window = f"over the last {self.settings.window_days} days of event time"
        by_detector = ["scenario", "detector"]
        precision = _gauge("bankguard_detection_precision_ratio",
                           f"Share of decided alerted events confirmed fraud, {window}.", by_detector)
        matured = (f"over the last {self.settings.window_days} days of event time whose chargebacks are all in "
                   "(ended at least the longest chargeback delay ago)")
        recall = _gauge("bankguard_detection_recall_ratio",
                        f"Share of confirmed frauds the detector alerted on (chargebacks are misses), {matured}.",
                        by_detector)
        decided = _gauge("bankguard_detection_decided_alerts",
                         f"Alerted events with a confirmed outcome, {window}.", by_detector)
        alerted = _gauge("bankguard_detection_alerted_events", f"Alerted events, {window}.", by_detector)
        last_day = _gauge("bankguard_detection_alerts_last_day",
                          "Alerted events on the last closed day of event time.", by_detector)
        cp_at_k = _gauge("bankguard_detection_cp_at_k_ratio",
                         f"Daily share of the detector's {self.k} highest-scored entities confirmed compromised, "
                         f"averaged over the days whose decisions are all in, {window}.", by_detector)
        frauds = _gauge("bankguard_detection_confirmed_frauds", f"Events confirmed fraud, {window}.", ["scenario"])
        matured_frauds = _gauge("bankguard_detection_matured_frauds",
                                f"Events confirmed fraud, {matured}: what recall counts over.", ["scenario"])
        budget = _gauge("bankguard_detection_alert_budget_last_day",
                        "The champion's alert budget for the last closed day's events.", ["scenario"])
        for scenario, quality in self.state.figures.items():
            frauds.add_metric([scenario], quality.confirmed_frauds)
            matured_frauds.add_metric([scenario], quality.matured_frauds)
            if quality.budget_last_day is not None:
                budget.add_metric([scenario], quality.budget_last_day)
            for detector, figures in quality.detectors.items():
                labels = [scenario, detector]
                decided.add_metric(labels, figures.decided_alerts)
                alerted.add_metric(labels, figures.alerted_events)
                for family, value in ((precision, figures.precision), (recall, figures.recall),
                                      (last_day, figures.alerts_last_day), (cp_at_k, figures.cp_at_k)):
                    if value is not None:
                        family.add_metric(labels, value)
        yield from (precision, recall, decided, alerted, last_day, cp_at_k, frauds, matured_frauds, budget)
        yield GaugeMetricFamily("bankguard_detection_precision_objective_ratio",
                                "The precision every detector is held to.", value=self.settings.precision_objective)
        yield GaugeMetricFamily("bankguard_detection_recall_objective_ratio",
                                "The recall every scenario's detectors together are held to.",
                                value=self.settings.recall_objective)
        records = CounterMetricFamily("bankguard_evaluator_records", "Records the evaluator read, by kind.",
                                      labels=["kind"])
        for kind, count in self.state.records.items():
            records.add_metric([kind], count)
        unreadable = CounterMetricFamily("bankguard_evaluator_unreadable_records",
                                         "Alert and outcome records the evaluator could not read.", labels=["kind"])
        for kind, count in self.state.unreadable.items():
            unreadable.add_metric([kind], count)
        yield from (records, unreadable)
        if self.state.clock_ms is not None:
            yield GaugeMetricFamily("bankguard_evaluator_event_time_seconds",
                                    "The latest event time the evaluator has seen (Unix seconds).",
                                    value=self.state.clock_ms / 1000)


def serve_metrics(state: EvaluatorState, settings: EvaluatorSettings, k: int, port: int,
                  bind: str = "127.0.0.1") -> None:
    """Expose the figures on ``http://<bind>:<port>/metrics``."""
    registry = CollectorRegistry()
    registry.register(QualityCollector(state, settings, k))
    start_http_server(port, addr=bind, registry=registry)
