"""``bankguard investigations``: the investigations desk as a process on Kafka.

It reads the alerts and truth topics from the beginning and writes each outcome to the
outcomes topic once the stream's event time reaches its ``decided_at`` (the record's
timestamp), so nothing downstream learns a label before the bank would. The desk's clock is
the latest event time seen, less ``lateness_s`` for alerts still on their way. It keeps no
state of its own: after a restart it replays its inputs, decides the same outcomes (the desk
is deterministic) and skips those already on the outcomes topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bankguard.kafka import client_config, produce, producer_config
from bankguard.producers.investigations import InvestigationsDesk, seen_alert, seen_fraud
from bankguard.settings import Settings
from bankguard.topic_range import TimeRange, partition_counts, read_range
from bankguard.topics import Topics

log = logging.getLogger(__name__)
OPEN_END_MS = 2**62


@dataclass
class DeskReport:
    """What a run read and wrote."""

    alerts: int = 0
    truth: int = 0
    invalid: int = 0  # records of the input topics the desk could not read
    outcomes: int = 0  # written by this run
    skipped: int = 0  # decided again after a restart, already on the topic


def decided_before(settings: Settings, topic: str) -> set[tuple[str, str]]:
    """(scenario, event id) of every outcome already on the topic."""
    found = set()
    for batch in read_range(settings, [topic], TimeRange(0, OPEN_END_MS)):
        for message in batch:
            value = message.value()
            if value is not None:
                record = orjson.loads(value)
                found.add((str(record["scenario"]), str(record["event_id"])))
    return found


def run_desk(settings: Settings, *, should_stop: Callable[[], bool],
             on_progress: Callable[[DeskReport], None] | None = None) -> DeskReport:
    """Run the desk until ``should_stop``; flush what was written and return the counts."""
    topics = Topics(settings.topics.prefix)
    report = DeskReport()
    desk = InvestigationsDesk(settings.investigations)
    already = decided_before(settings, topics.outcomes)
    lateness_ms = int(settings.investigations.lateness_s * 1000)
    consumer = Consumer(client_config(settings.kafka) | {
        "group.id": topics.investigations_group, "enable.auto.commit": False, "fetch.wait.max.ms": 50,
    })
    producer = Producer(producer_config(settings))
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)
                     for topic, count in partition_counts(settings, [topics.alerts, topics.truth]).items()
                     for partition in range(count)])
    clock_ms: int | None = None
    try:
        while not should_stop():
            messages = consumer.consume(1_000, 0.2)
            for message in messages:
                value = message.value()
                if message.error() or value is None:
                    continue
                try:
                    record = orjson.loads(value)
                    if message.topic() == topics.alerts:
                        alert = seen_alert(record)
                        desk.add_alert(alert)
                        report.alerts += 1
                        event_ms = alert.event_ms
                    else:
                        fraud = seen_fraud(record)
                        if fraud is not None:
                            desk.add_fraud(fraud)
                        report.truth += 1
                        event_ms = fraud.event_ms if fraud is not None else clock_ms or 0
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    report.invalid += 1
                    log.warning("unreadable record on %s: %s", message.topic(), exc)
                    continue
                clock_ms = event_ms if clock_ms is None else max(clock_ms, event_ms)
            if clock_ms is None or not messages:
                continue
            desk.close_through(clock_ms - lateness_ms)
            for outcome in desk.release(clock_ms - lateness_ms):
                if (outcome.scenario, outcome.event_id) in already:
                    report.skipped += 1
                    continue
                produce(producer, topics.outcomes, orjson.dumps(outcome.record()), outcome.entity_id.encode(),
                        outcome.decided_ms)
                report.outcomes += 1
            producer.poll(0)
            if on_progress is not None:
                on_progress(report)
    finally:
        producer.flush(30)
        consumer.close()
    return report
