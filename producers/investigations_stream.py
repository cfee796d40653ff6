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
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from bankguard.kafka import client_config, produce, producer_config
from bankguard.producers.investigations import InvestigationsDesk, event_time_ms, seen_alert, seen_fraud
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


class Watermark:
    """The event time all input partitions have reached.

    Unknown until every partition delivered a record or reported its end; then the lowest
    latest time among the partitions still being read, or, when all are caught up, the
    latest time seen anywhere (an idle partition does not stop the clock)."""

    def __init__(self, partitions: list[tuple[str, int]]) -> None:
        self._latest: dict[tuple[str, int], int] = {}
        self._waiting = set(partitions)  # neither a record nor the end seen yet
        self._caught_up: set[tuple[str, int]] = set()

    def saw(self, partition: tuple[str, int], event_ms: int) -> None:
        self._latest[partition] = max(event_ms, self._latest.get(partition, event_ms))
        self._waiting.discard(partition)
        self._caught_up.discard(partition)

    def at_end(self, partition: tuple[str, int]) -> None:
        self._waiting.discard(partition)
        self._caught_up.add(partition)

    def value(self) -> int | None:
        if self._waiting or not self._latest:
            return None
        reading = [t for p, t in self._latest.items() if p not in self._caught_up]
        return min(reading) if reading else max(self._latest.values())


def decided_before(settings: Settings, topic: str) -> set[tuple[str, str]]:
    """(scenario, event id) of every outcome already on the topic."""
    found = set()
    for batch in read_range(settings, [topic], TimeRange(0, OPEN_END_MS)):
        for message in batch:
            try:
                record = orjson.loads(message.value() or b"null")
                found.add((str(record["scenario"]), str(record["event_id"])))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("unreadable record at offset %s of %s", message.offset(), topic)
    return found


def run_desk(settings: Settings, *, should_stop: Callable[[], bool],
             on_progress: Callable[[DeskReport], None] | None = None,
             on_ready: Callable[[], None] | None = None) -> DeskReport:
    """Run the desk until ``should_stop``; flush what was written and return the counts.
    ``on_ready`` is called once the cluster answered and the inputs are assigned."""
    topics = Topics(settings.topics.prefix)
    report = DeskReport()
    desk = InvestigationsDesk(settings.investigations)
    already = decided_before(settings, topics.outcomes)
    lateness_ms = int(settings.investigations.lateness_s * 1000)
    # Half a second of fetch wait: the desk works in days, and idle polling would load the broker.
    consumer = Consumer(client_config(settings.kafka) | {
        "group.id": topics.investigations_group, "enable.auto.commit": False, "fetch.wait.max.ms": 500,
        "enable.partition.eof": True,
    })
    producer = Producer(producer_config(settings))
    counts = partition_counts(settings, [topics.alerts, topics.truth])
    partitions = [(topic, partition) for topic, count in counts.items() for partition in range(count)]
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for topic, partition in partitions])
    watermark = Watermark(partitions)
    if on_ready is not None:
        on_ready()
    try:
        while not should_stop():
            messages = consumer.consume(1_000, 0.2)
            for message in messages:
                where = (message.topic() or "", message.partition() or 0)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - librdkafka's public EOF code
                        watermark.at_end(where)
                    continue
                event_ms = _read(desk, report, message.topic() == topics.alerts, message.value())
                if event_ms is not None:
                    watermark.saw(where, event_ms)
            clock_ms = watermark.value()
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


def _read(desk: InvestigationsDesk, report: DeskReport, is_alert: bool, value: bytes | None) -> int | None:
    """Give one input record to the desk; its event time, or ``None`` for a record it cannot read."""
    if value is None:
        return None
    try:
        record = orjson.loads(value)
        if is_alert:
            alert = seen_alert(record)
            desk.add_alert(alert)
            report.alerts += 1
            return alert.event_ms
        report.truth += 1
        fraud = seen_fraud(record)
        if fraud is None:
            return event_time_ms(record["event_time"])
        desk.add_fraud(fraud)
        return fraud.event_ms
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        report.invalid += 1
        log.warning("unreadable %s record: %s", "alert" if is_alert else "truth", exc)
        return None
