"""The worker's Prometheus metrics (prometheus-client, Prometheus naming guide).

Label values are pre-initialised so every series exists at 0 from start-up, which
keeps ``rate()`` and absence alerts honest; the score drift is the exception, absent
until measured, since a 0 there would read "stable". No entity or event ids as labels.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

from bankguard.rules import active_rules
from bankguard.rules.config import SEVERITY_RANK, RulesConfig
from bankguard.scenarios import SCENARIOS
from bankguard.stream_agents.batch_histogram import BatchHistogram

REJECT_REASONS = ("malformed_json", "schema_violation")
SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
RECENT_EVENTS = 100  # the high-risk ratio's window, in scored events per scenario
LATENCY_SLO_S = 0.1  # the "fast" bucket dashboards show; the paging SLO (p99 < 1 s) is in the alert rules
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, LATENCY_SLO_S, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WorkerMetrics:
    """One registry per worker process, served on the worker's ``/metrics``."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.events = Counter("bankguard_events", "Events consumed and validated, by scenario.",
                              ["scenario"], registry=registry)
        self.rejected = Counter("bankguard_events_rejected", "Events sent to the dead-letter topic, by reason.",
                                ["scenario", "reason"], registry=registry)
        self.alerts = Counter("bankguard_alerts", "Alerts written to the alert topic.",
                              ["scenario", "detector", "severity"], registry=registry)
        self.latency = BatchHistogram("bankguard_event_latency_seconds",
                                      "From the event's time to its scoring (its alerts sent).",
                                      ["scenario"], LATENCY_BUCKETS, registry)
        self.rules_info = Info("bankguard_rules_config", "Active rules configuration.", registry=registry)
        self.rules_rejected = Counter("bankguard_rules_config_rejected",
                                      "Rules updates rejected by validation.", registry=registry)
        self.batch_size = Histogram("bankguard_batch_events", "Events per processed batch.",
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000), registry=registry)
        self.build = Info("bankguard_build", "Version of the running worker.", registry=registry)
        self.high_risk_ratio = Gauge("bankguard_high_risk_ratio",
                                     f"Share of high or critical events among the last {RECENT_EVENTS} scored.",
                                     ["scenario"], registry=registry)
        self.consumer_lag = Gauge("bankguard_consumer_lag", "Messages behind the end of the partitions this "
                                  "worker consumes, by topic.", ["topic"], registry=registry)
        self.model_inference = Histogram("bankguard_model_inference_seconds",
                                         "One model's ONNX run over one batch of one scenario.", ["model"],
                                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                                         registry=registry)
        self.model_score = BatchHistogram("bankguard_model_score", "Scores of the champion and shadow models.",
                                          ["scenario", "model"], SCORE_BUCKETS, registry)
        self.model_agreement = Gauge("bankguard_model_agreement", "Share of the last batch's events on which "
                                     "a model's decision matches the champion's.", ["scenario", "model"],
                                     registry=registry)
        self.model_score_psi = Gauge("bankguard_model_score_psi", "Population stability index of the champion's "
                                     "last scores against its validation scores, the manifest's score_reference "
                                     "(< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant shift).",
                                     ["scenario", "model"], registry=registry)
        self.risk_forecast = Gauge("bankguard_risk_forecast_ratio", "Forecast high-risk ratio over the next "
                                   "horizon (minutes).", ["scenario", "horizon"], registry=registry)
        self._recent: dict[str, deque[bool]] = {scenario: deque(maxlen=RECENT_EVENTS) for scenario in SCENARIOS}
        self._lag: dict[tuple[str, int], int] = {}
        ProcessCollector(registry=registry)
        self.state_entities = Gauge("bankguard_state_entities", "Entities held in this worker's live state.",
                                    registry=registry)
        for scenario in SCENARIOS:
            self.events.labels(scenario)
            self.latency.labels(scenario)
            self.high_risk_ratio.labels(scenario).set(0)
            for reason in REJECT_REASONS:
                self.rejected.labels(scenario, reason)

    def rules_changed(self, config: RulesConfig) -> None:
        """Publish the version and make the new detectors' alert series exist at 0."""
        self.rules_info.info({"version": config.version})
        for scenario in SCENARIOS:
            for rule in active_rules(scenario, config):
                for severity in SEVERITY_RANK:
                    self.alerts.labels(scenario, rule.id, severity)

    def record_risk(self, scenario: str, high_risk: list[bool]) -> None:
        recent = self._recent[scenario]
        recent.extend(high_risk)
        if recent:
            self.high_risk_ratio.labels(scenario).set(sum(recent) / len(recent))

    def record_lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag[(topic, partition)] = max(0, lag)
        self.consumer_lag.labels(topic).set(sum(v for (t, _), v in self._lag.items() if t == topic))

    def partitions_revoked(self) -> None:
        """Forget what may now belong to another worker, so no stale value keeps an alert firing."""
        self._lag.clear()
        self.consumer_lag.clear()
        self.model_score_psi.clear()  # back with the scenario's next batch here, if it still comes
        for scenario, recent in self._recent.items():
            recent.clear()
            self.high_risk_ratio.labels(scenario).set(0)

    def record_models(self, scenario: str, champion: str, scores: dict[str, np.ndarray],
                      thresholds: dict[str, float], seconds: dict[str, float]) -> None:
        decided = scores[champion] >= thresholds[champion]
        for model, values in scores.items():
            self.model_score.observe(values, scenario, model)
            self.model_agreement.labels(scenario, model).set(float(np.mean((values >= thresholds[model]) == decided)))
            self.model_inference.labels(model).observe(seconds[model])

    def record_drift(self, scenario: str, champion: str, psi: float) -> None:
        self.model_score_psi.labels(scenario, champion).set(psi)

    def record_forecast(self, scenario: str, forecast: dict[int, float]) -> None:
        for horizon, ratio in forecast.items():
            self.risk_forecast.labels(scenario, str(horizon)).set(ratio)
