"""Producer metrics, read from the publisher's own counts at scrape time (no per-event cost)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from bankguard.producers.publisher import PublishReport


class PublisherCollector(Collector):
    def __init__(self, report: PublishReport) -> None:
        self.report = report

    def collect(self) -> Iterator[CounterMetricFamily]:
        produced = CounterMetricFamily(
            "bankguard_producer_events", "Events Kafka acknowledged, by scenario.", labels=["scenario"])
        failed = CounterMetricFamily(
            "bankguard_producer_delivery_failures", "Events the broker did not acknowledge.",
            labels=["scenario"])
        truth = CounterMetricFamily(
            "bankguard_producer_truth_labels", "Ground-truth records sent, by scenario.",
            labels=["scenario"])
        for scenario, counts in self.report.scenarios.items():
            produced.add_metric([scenario], counts.produced)
            failed.add_metric([scenario], counts.failed)
            truth.add_metric([scenario], counts.truth)
        yield from (produced, failed, truth)


def serve_metrics(report: PublishReport, port: int, bind: str = "127.0.0.1") -> None:
    """Expose the run's counters on ``http://<bind>:<port>/metrics``."""
    registry = CollectorRegistry()
    registry.register(PublisherCollector(report))
    start_http_server(port, addr=bind, registry=registry)
