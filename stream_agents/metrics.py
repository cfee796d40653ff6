"""The worker's Prometheus metrics (prometheus-client, Prometheus naming guide).

Label values are pre-initialised so every series exists at 0 from start-up, which
keeps ``rate()`` and absence alerts honest.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Info

from bankguard.scenarios import SCENARIOS

REJECT_REASONS = ("malformed_json", "schema_violation")


class WorkerMetrics:
    """One registry per worker process, served on the worker's ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "bankguard_events", "Events consumed and validated, by scenario.",
            ["scenario"], registry=self.registry,
        )
        self.rejected = Counter(
            "bankguard_events_rejected", "Events sent to the dead-letter topic, by reason.",
            ["scenario", "reason"], registry=self.registry,
        )
        self.build = Info("bankguard_build", "Version of the running worker.", registry=self.registry)
        for scenario in SCENARIOS:
            self.events.labels(scenario)
            for reason in REJECT_REASONS:
                self.rejected.labels(scenario, reason)
