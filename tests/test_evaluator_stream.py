"""The evaluator as a process, through the real broker: alerts, outcomes and events in,
the ledger's figures on /metrics and in its final report."""

from __future__ import annotations

import json
import sys

import orjson
import pytest
from confluent_kafka import Producer

from bankguard.broker import free_port
from bankguard.kafka import produce, producer_config
from bankguard.monitoring import scrape_samples
from bankguard.processes import ManagedProcess
from bankguard.producers.investigations import desk_outcomes, seen_alert, seen_fraud
from bankguard.settings import Settings, settings_env
from bankguard.stream_agents.evaluator.quality import ALL, QualityLedger, alert_seen
from bankguard.topics import Topics
from kafka_helpers import wait_until
from outcome_helpers import DAY_MS, T0, desk_inputs, with_prompt_chargebacks

pytestmark = pytest.mark.broker
DAYS = 3


def publish(settings: Settings, records: list[tuple[str, bytes, int]]) -> None:
    producer = Producer(producer_config(settings))
    for topic, value, timestamp_ms in records:
        produce(producer, topic, value, b"key", timestamp_ms)
    assert producer.flush(30) == 0


def gauges(url: str, metric: str) -> dict[tuple[str, str], float]:
    return {(s.labels["scenario"], s.labels["detector"]): s.value for s in scrape_samples(url, metric)}


def test_the_evaluator_serves_and_reports_the_ledgers_figures_of_what_is_on_the_topics(settings, tmp_path):
    topics = Topics(settings.topics.prefix)
    settings = with_prompt_chargebacks(settings)
    alerts, truth = desk_inputs(seed=5, days=DAYS)
    outcomes = desk_outcomes(settings.investigations, [seen_alert(a) for a in alerts],
                             [f for record in truth if (f := seen_fraud(record)) is not None])
    # Events: 100 a day per scenario, and one two days after the last day, so every day's decisions are in.
    event_times = [T0 + day * DAY_MS + i * 60_000 for day in range(DAYS) for i in range(100)]
    event_times.append(T0 + (DAYS + 2) * DAY_MS)
    records = [(topics.alerts, orjson.dumps(a), a["t_ms"]) for a in alerts]
    records += [(topics.outcomes, orjson.dumps(o.record()), o.decided_ms) for o in outcomes]
    records += [(topics.scenario(s), b"{}", t) for s in ("credit_card", "insurance_claims") for t in event_times]
    # Poison the evaluator must count and skip: an alert without a detector, an outcome that is no JSON.
    records += [(topics.alerts, orjson.dumps({k: v for k, v in alerts[0].items() if k != "detector"}), T0),
                (topics.outcomes, b"not json", T0)]
    publish(settings, records)

    expected = QualityLedger(k=settings.investigations.capacity_per_day, window_days=settings.evaluator.window_days,
                             decision_delay_days=settings.investigations.delay_max_days,
                             recall_delay_days=settings.investigations.chargeback_max_days)
    for record in alerts:
        expected.add_alert(alert_seen(record))
    for outcome in outcomes:
        expected.add_outcome(outcome)
    for scenario in ("credit_card", "insurance_claims"):
        for t in event_times:
            expected.add_events(scenario, t)
    figures = expected.figures()
    assert figures["credit_card"].detectors[ALL].cp_days == DAYS
    assert figures["credit_card"].detectors[ALL].decided_alerts > 0
    assert figures["credit_card"].recall_days == DAYS and figures["credit_card"].detectors[ALL].recall is not None

    port, report = free_port(), tmp_path / "evaluator.json"
    evaluator = ManagedProcess("evaluator", [sys.executable, "-m", "bankguard", "evaluate", "--metrics-port",
                                             str(port), "--report", str(report)],
                               log_path=tmp_path / "evaluator.log", env=settings_env(
                                   settings.model_copy(update={"evaluator": settings.evaluator.model_copy(
                                       update={"refresh_s": 0.5})}))).start()
    url = f"http://127.0.0.1:{port}/metrics"
    want = {(scenario, detector): quality.precision for scenario, quality in figures.items()
            for detector, quality in quality.detectors.items() if quality.precision is not None}
    def served() -> dict:
        try:
            return gauges(url, "bankguard_detection_precision_ratio")
        except OSError:  # not serving yet
            return {}

    def alive() -> None:
        assert evaluator.alive(), evaluator.log_path.read_text()[-3000:]

    try:
        wait_until(lambda: served() == pytest.approx(want), lambda: f"precision served: {served()}",
                   timeout_s=60, check=alive)
        unreadable = {s.labels["kind"]: s.value for s in scrape_samples(url, "bankguard_evaluator_unreadable_records")
                      if s.name.endswith("_total")}
        assert unreadable == {"alert": 1.0, "outcome": 1.0}
        cp = gauges(url, "bankguard_detection_cp_at_k_ratio")
        assert cp[("credit_card", ALL)] == pytest.approx(figures["credit_card"].detectors[ALL].cp_at_k)
    finally:
        evaluator.stop()
    assert evaluator.returncode == 0, evaluator.log_path.read_text()[-3000:]
    written = json.loads(report.read_text())
    for scenario in ("credit_card", "insurance_claims"):
        assert written["scenarios"][scenario]["precision"] == pytest.approx(figures[scenario].summary()["precision"])
        assert written["scenarios"][scenario]["recall"] == pytest.approx(figures[scenario].summary()["recall"])
        assert written["scenarios"][scenario]["events"] == len(event_times)
