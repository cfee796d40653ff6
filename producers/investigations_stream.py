"""``bankguard investigations``: the investigations desk as a process on Kafka.

It reads the alerts and truth topics from the beginning and writes each outcome to the
outcomes topic once the stream's event time reaches its ``decided_at`` (the record's
timestamp), so nothing downstream learns a label before the bank would. The desk's clock is
the event time its inputs have reached, held back to what the workers have scored (see
:class:`ScoringProgress`: the truth is written at once, an event's alerts only once a worker
scored it), less ``lateness_s``. It keeps no state of its own: after a restart it replays its
inputs, decides the same outcomes (the desk is deterministic) and skips those already on the
outcomes topic.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from bankguard.kafka import TRAILING_FETCH, client_config, produce, producer_config
from bankguard.events import event_time_ms
from bankguard.producers.investigations import InvestigationsDesk, seen_case, seen_fraud
from bankguard.settings import Settings
from bankguard.topic_range import TimeRange, partition_counts, read_range
from bankguard.topics import Topics

log = logging.getLogger(__name__)
OPEN_END_MS = 2**62
COMMITTED_POLL_S = 1.0  # how often the workers' committed offsets are read


@dataclass
class DeskReport:
    """What a run read and wrote."""

    cases: int = 0  # case records (each version of a case)
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


class ScoringProgress:
    """The event time up to which the workers have scored every event, so all its alerts are
    written: a worker commits an input offset only once that batch's alerts are acknowledged.

    It reads the scenario topics' record timestamps (their event times) and the worker
    group's committed offsets; a partition holds the clock at its first record past the
    committed offset, and one scored to its end does not hold it. Without it the truth,
    which the producer writes as it goes, would run the desk's clock past alerts the workers
    are still scoring, and the desk would close their day without them."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], deque[tuple[int, int]]] = {}  # partition -> (offset, ms) unscored
        self._committed: dict[tuple[str, int], int] = {}

    def saw(self, partition: tuple[str, int], offset: int, event_ms: int) -> None:
        if offset >= self._committed.get(partition, 0):
            self._pending.setdefault(partition, deque()).append((offset, event_ms))

    def committed(self, offsets: dict[tuple[str, int], int]) -> None:
        self._committed.update(offsets)
        for partition, offset in offsets.items():
            pending = self._pending.get(partition)
            while pending and pending[0][0] < offset:
                pending.popleft()

    def value(self) -> int | None:
        """The earliest event time not yet scored; ``None`` when everything seen is scored."""
        holding = [pending[0][1] for pending in self._pending.values() if pending]
        return min(holding) if holding else None


class CommitGate:
    """Holds a worker commit back until the desk has read the cases written before it.

    A worker sends a batch's cases before it commits the batch's input offsets, so the ends of
    the cases partitions, asked for after the commit was read, cover every case of the events
    it commits. The desk's own fetch of those cases trails by up to its fetch wait: acted on
    earlier, the commit would free the clock and close a day without its latest cases."""

    def __init__(self) -> None:
        self._held: tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]] | None = None

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self, offsets: dict[tuple[str, int], int], case_ends: dict[tuple[str, int], int]) -> None:
        """``offsets``: the workers' commit; ``case_ends``: the cases partitions' ends read after it."""
        self._held = (offsets, case_ends)

    def release(self, read_to: Callable[[tuple[str, int]], int]) -> dict[tuple[str, int], int] | None:
        """The held commit once ``read_to`` (the desk's next offset to read, per cases partition)
        has reached every end; ``None`` while any is behind or nothing is held."""
        if self._held is None:
            return None
        offsets, ends = self._held
        if any(read_to(partition) < end for partition, end in ends.items()):
            return None
        self._held = None
        return offsets


def end_offsets(consumer: Consumer, partitions: list[tuple[str, int]],
                timeout_s: float = 10.0) -> dict[tuple[str, int], int] | None:
    """Each partition's end offset, or ``None`` when the broker did not answer in time."""
    try:
        return {(topic, partition): consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s, cached=False)[1] for topic, partition in partitions}
    except KafkaException as exc:
        _raise_unless_retriable(exc)
        return None


def _raise_unless_retriable(exc: KafkaException) -> None:
    error = exc.args[0]
    if not (error.retriable() or error.code() == KafkaError._TIMED_OUT):  # noqa: SLF001 - librdkafka's public code
        raise exc
    log.warning("the broker did not answer (%s); asking again", error.str())


def committed_offsets(consumer: Consumer, partitions: list[tuple[str, int]],
                      timeout_s: float = 10.0) -> dict[tuple[str, int], int] | None:
    """The worker group's committed offsets (none yet: 0), or ``None`` when the broker did not
    answer in time: the desk's clock then holds where it is, it never runs ahead of the scoring."""
    try:
        found = consumer.committed([TopicPartition(topic, partition) for topic, partition in partitions],
                                   timeout=timeout_s)
    except KafkaException as exc:
        _raise_unless_retriable(exc)
        return None
    return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}


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
    consumer = Consumer(client_config(settings.kafka) | TRAILING_FETCH | {  # the desk works in days
        "group.id": topics.investigations_group, "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    producer = Producer(producer_config(settings))
    scenario_topics = set(topics.scenario_topics.values())
    counts = partition_counts(settings, [topics.cases, topics.truth, *scenario_topics])
    every = [(topic, partition) for topic, count in counts.items() for partition in range(count)]
    scenario_partitions = [where for where in every if where[0] in scenario_topics]
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for topic, partition in every])
    watermark = Watermark(every)  # the scenario topics too: the truth must not run ahead of the events read
    case_partitions = [where for where in every if where[0] == topics.cases]
    scored = ScoringProgress()
    gate = CommitGate()
    read_to: dict[tuple[str, int], int] = {}  # cases partition -> the next offset the desk reads there
    workers = Consumer(client_config(settings.kafka) | {"group.id": topics.worker_group, "enable.auto.commit": False})
    asked_ms = 0.0
    if on_ready is not None:
        on_ready()
    try:
        while not should_stop():
            messages = consumer.consume(1_000, 0.2)
            for message in messages:
                where = (message.topic() or "", message.partition() or 0)
                is_case = where[0] == topics.cases
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - librdkafka's public EOF code
                        watermark.at_end(where)
                        if is_case:
                            read_to[where] = max(read_to.get(where, 0), message.offset() or 0)
                    continue
                if is_case:
                    read_to[where] = (message.offset() or 0) + 1
                if where[0] in scenario_topics:
                    scored.saw(where, message.offset() or 0, message.timestamp()[1])
                    watermark.saw(where, message.timestamp()[1])
                    continue
                event_ms = _read(desk, report, is_case, message.value())
                if event_ms is not None:
                    watermark.saw(where, event_ms)
            if not gate.holding and time.monotonic() - asked_ms >= COMMITTED_POLL_S:
                offsets = committed_offsets(workers, scenario_partitions)
                case_ends = end_offsets(workers, case_partitions) if offsets is not None else None
                if offsets is not None and case_ends is not None:
                    gate.hold(offsets, case_ends)
                asked_ms = time.monotonic()
            released = gate.release(lambda where: read_to.get(where, 0))
            if released is not None:
                scored.committed(released)
            clock_ms = watermark.value()
            if clock_ms is None:
                continue
            unscored_ms = scored.value()
            if unscored_ms is not None:
                clock_ms = min(clock_ms, unscored_ms)
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
        workers.close()
    return report


def _read(desk: InvestigationsDesk, report: DeskReport, is_case: bool, value: bytes | None) -> int | None:
    """Give one input record to the desk; its event time, or ``None`` for a record it cannot read."""
    if value is None:
        return None
    try:
        record = orjson.loads(value)
        if is_case:  # a case's new version: its alerts again, ranked by its risk now
            alerts = seen_case(record)
            for alert in alerts:
                desk.add_alert(alert)
            report.cases += 1
            return max(alert.event_ms for alert in alerts)
        report.truth += 1
        fraud = seen_fraud(record)
        if fraud is None:
            return event_time_ms(record["event_time"])
        desk.add_fraud(fraud)
        return fraud.event_ms
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        report.invalid += 1
        log.warning("unreadable %s record: %s", "case" if is_case else "truth", exc)
        return None
