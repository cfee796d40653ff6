"""``bankguard evaluate``: detection quality as metrics, from the alerts and the outcomes feed.

It reads the alerts, the outcomes and the scenario topics from the beginning (the scenario
topics only for their record timestamps, the event times: no event is decoded) and serves the
figures of :mod:`~bankguard.stream_agents.evaluator.quality` on ``/metrics``. It keeps no state
of its own: after a restart it reads its inputs again and computes the same figures. Asked to
stop, it first reads every input to the end it has at that moment, so a final report covers
everything written before the stop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from bankguard.errors import BankguardError
from bankguard.kafka import TRAILING_FETCH, client_config
from bankguard.outcomes import decode_outcome
from bankguard.output_files import write_text_atomic
from bankguard.settings import Settings
from bankguard.stream_agents.evaluator.metrics import EvaluatorState
from bankguard.stream_agents.evaluator.quality import QualityLedger, alert_seen
from bankguard.topic_range import Position, next_offset, partition_counts, position_of
from bankguard.topics import Topics

log = logging.getLogger(__name__)
FINAL_READ_TIMEOUT_S = 60.0
FETCH_ROUND_S = 1.5  # three fetch waits: every partition has been fetched since the stop


def champion_budgets(settings: Settings) -> dict[str, float]:
    """Each scenario's champion alert budget (alerts per 1,000 events) from the arena report;
    none when models are off or no report exists (rules have no budget)."""
    if not settings.models.enabled:
        return {}
    from bankguard.models.arena import load_report
    from bankguard.models.registry import default_dir

    try:
        report = load_report(settings.models.dir or default_dir())
    except BankguardError as exc:
        log.warning("no alert budgets: %s", exc)
        return {}
    return {scenario: float(entry["budget_per_1000_events"]) for scenario, entry in report.get("scenarios", {}).items()
            if isinstance(entry.get("budget_per_1000_events"), int | float)}


class Evaluator:
    """The ledger fed from Kafka; :meth:`refresh` publishes its figures to the metrics state."""

    def __init__(self, settings: Settings, state: EvaluatorState) -> None:
        self.settings = settings
        self.state = state
        self.topics = Topics(settings.topics.prefix)
        self.ledger = QualityLedger(k=settings.investigations.capacity_per_day,
                                    window_days=settings.evaluator.window_days,
                                    decision_delay_days=settings.investigations.delay_max_days,
                                    recall_delay_days=settings.investigations.chargeback_max_days,
                                    budgets=champion_budgets(settings))
        self._scenario_of = {topic: scenario for scenario, topic in self.topics.scenario_topics.items()}
        self._next: dict[Position, int] = {}  # the next offset to read, per partition

    def read(self, message: Message) -> None:
        """Give one record to the ledger (a record it cannot read is counted and logged)."""
        where = position_of(message)
        self._next[where] = next_offset(message)
        topic = where[0]
        scenario = self._scenario_of.get(topic)
        if scenario is not None:
            self.ledger.add_events(scenario, message.timestamp()[1])
            self.state.records["event"] += 1
            return
        value = message.value()
        if value is None:
            return
        kind = "alert" if topic == self.topics.alerts else "outcome"
        try:
            if kind == "alert":
                self.ledger.add_alert(alert_seen(orjson.loads(value)))
            else:
                self.ledger.add_outcome(decode_outcome(value, f"{topic}[{where[1]}]@{message.offset()}"))
            self.state.records[kind] += 1
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, BankguardError) as exc:
            self.state.unreadable[kind] += 1
            log.warning("unreadable %s at %s[%s]@%s: %s", kind, topic, where[1], message.offset(), exc)

    def refresh(self) -> None:
        self.state.figures = self.ledger.figures()
        self.state.clock_ms = self.ledger.clock_ms

    def behind(self, ends: dict[Position, int]) -> list[Position]:
        """The partitions not yet read up to ``ends``."""
        return [where for where, end in ends.items() if self._next.get(where, 0) < end]

    def report(self) -> dict[str, Any]:
        """The final figures as JSON: the ``up`` summary's evaluator section."""
        return {
            "event_time_ms": self.ledger.clock_ms,
            "records": dict(self.state.records), "unreadable": dict(self.state.unreadable),
            "k": self.ledger.k, "window_days": self.ledger.window_days,
            "scenarios": {scenario: quality.summary() | {
                "budget_last_day": quality.budget_last_day,
                "detectors": {name: asdict(figures) for name, figures in quality.detectors.items()}}
                for scenario, quality in self.state.figures.items()},
        }


def run_evaluator(settings: Settings, state: EvaluatorState, *, should_stop: Callable[[], bool],
                  on_ready: Callable[[], None] | None = None) -> Evaluator:
    """Read and refresh until ``should_stop``, then read every input to its end and refresh once more."""
    evaluator = Evaluator(settings, state)
    topics = evaluator.topics
    inputs = [topics.alerts, topics.outcomes, *topics.scenario_topics.values()]
    consumer = Consumer(client_config(settings.kafka) | TRAILING_FETCH | {  # the figures refresh every few seconds
        "group.id": f"{settings.topics.prefix}-evaluator", "enable.auto.commit": False,
    })
    partitions = [TopicPartition(topic, partition, OFFSET_BEGINNING)
                  for topic, count in partition_counts(settings, inputs).items() for partition in range(count)]
    consumer.assign(partitions)
    if on_ready is not None:
        on_ready()
    refreshed = time.monotonic()
    try:
        while not should_stop():
            _consume(consumer, evaluator)
            if time.monotonic() - refreshed >= settings.evaluator.refresh_s:
                evaluator.refresh()
                refreshed = time.monotonic()
        # The ends as the last fetches reported them (the embedded broker answers a separate
        # offsets query wrongly for batched records), after fetches that all began after the stop.
        stopped = time.monotonic()
        while True:
            _consume(consumer, evaluator)
            ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, cached=True)[1] for tp in partitions}
            behind = evaluator.behind(ends)
            waited = time.monotonic() - stopped
            if (waited >= FETCH_ROUND_S and not behind) or waited >= FINAL_READ_TIMEOUT_S:
                break
        if behind:
            log.warning("stopped before the end of %s", ", ".join(f"{t}[{p}]" for t, p in behind))
        evaluator.refresh()
    finally:
        consumer.close()
    return evaluator


def _consume(consumer: Consumer, evaluator: Evaluator) -> None:
    for message in consumer.consume(2_000, 0.5):
        if message.error() is None:
            evaluator.read(message)
        else:
            log.warning("reading %s[%s]: %s", message.topic(), message.partition(), message.error())


def write_report(evaluator: Evaluator, path: Path) -> Path:
    """The final figures as a JSON file, written whole or not at all."""
    return write_text_atomic(path, json.dumps(evaluator.report(), indent=2))
