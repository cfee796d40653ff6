"""Read topics by event-time range: what replay and topic backtests start from.

Each partition is read from the first offset whose timestamp is at or after ``start``
(``offsets_for_times``) up to the first record at or after ``end``, or to the end of
the partition as it stands (partition EOF). Records before ``start`` are skipped as
well, so a broker that answers the offset lookup coarsely (the embedded one answers
offset 0) costs reading time, never correctness. Timestamps are the records' Kafka
timestamps, which the producers set to the event time.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast
from datetime import datetime, UTC

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from bankguard.errors import BankguardError
from bankguard.events import epoch_ms
from bankguard.kafka import client_config
from bankguard.settings import Settings

Position = tuple[str, int]  # topic, partition


def position_of(message: Message) -> Position:
    """A record's topic and partition. confluent-kafka types both optional (an error event
    has neither); every record :func:`read_range` yields has both."""
    return cast(str, message.topic()), cast(int, message.partition())


def next_offset(message: Message) -> int:
    """The offset after a record's own (what a consumer commits or a checkpoint resumes at)."""
    return cast(int, message.offset()) + 1


@dataclass(frozen=True)
class TimeRange:
    """Half-open ``[start_ms, end_ms)`` of record timestamps (epoch milliseconds)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise BankguardError("empty time range: --to must be later than --from")


#: Every record a topic holds, whatever its timestamp.
EVERYTHING = TimeRange(0, 2**62)


def parse_time(text: str, option: str = "time") -> int:
    """Epoch milliseconds of an ISO 8601 date or date-time; a time without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BankguardError(f"{option}: {text!r} is not an ISO 8601 date or time "
                             "(for example 2026-11-20 or 2026-11-20T08:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return epoch_ms(moment)


def iso_ms(epoch_ms: int) -> str:
    """The inverse of :func:`parse_time`, for messages and reports (UTC, seconds)."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def partition_counts(settings: Settings, topics: Iterable[str], timeout_s: float = 10.0) -> dict[str, int]:
    """Partitions of each topic; an unknown topic or an unreachable cluster is said in one line."""
    admin = AdminClient(client_config(settings.kafka) | {"log_level": 0})
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise BankguardError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: "
                             f"{exc.args[0].str()}") from None
    counts = {}
    for topic in topics:
        meta = existing.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise BankguardError(f"unknown topic {topic} (give topic names, or scenario keys such as credit_card)")
        counts[topic] = len(meta.partitions)
    return counts


def read_range(settings: Settings, topics: Iterable[str], window: TimeRange, *,
               resume: Mapping[Position, int] | None = None, batch_size: int = 5_000,
               timeout_s: float = 30.0) -> Generator[list[Message], None, None]:
    """Batches of records in ``window``, each partition in offset order.

    ``resume`` maps (topic, partition) to the next offset to read (a checkpoint); such
    partitions start there instead of at ``window.start_ms``. Raises ``BankguardError``
    when the cluster is unreachable or a topic unknown, or no record arrives for
    ``timeout_s`` before every partition reached its end.
    """
    consumer = Consumer(client_config(settings.kafka) | {
        "group.id": f"{settings.topics.prefix}-range-reader", "enable.auto.commit": False,
        "enable.partition.eof": True, "fetch.wait.max.ms": 50, "log_level": 0,
    })
    try:
        partitions = [TopicPartition(topic, p) for topic, n in partition_counts(settings, topics).items()
                      for p in range(n)]
        resume = resume or {}
        lookup = [TopicPartition(tp.topic, tp.partition, window.start_ms) for tp in partitions
                  if (tp.topic, tp.partition) not in resume]
        starts = {(tp.topic, tp.partition): tp.offset
                  for tp in (consumer.offsets_for_times(lookup, timeout=timeout_s) if lookup else [])}
        assignment = []
        for tp in partitions:
            position = (tp.topic, tp.partition)
            offset = resume.get(position, starts.get(position, -1))
            # -1: no record at or after start (on a broker that answers exactly): read nothing there.
            assignment.append(TopicPartition(tp.topic, tp.partition, offset if offset >= 0 else -1))
        open_partitions = {(tp.topic, tp.partition) for tp in assignment}
        consumer.assign(assignment)
        yield from _drain(consumer, open_partitions, window, batch_size, timeout_s)
    finally:
        consumer.close()


def _drain(consumer: Consumer, open_partitions: set[Position], window: TimeRange, batch_size: int,
           timeout_s: float) -> Iterator[list[Message]]:
    last_progress = time.monotonic()
    while open_partitions:
        messages = consumer.consume(batch_size, 0.5)
        if not messages:
            if time.monotonic() - last_progress > timeout_s:
                waiting = ", ".join(f"{t}[{p}]" for t, p in sorted(open_partitions))
                raise BankguardError(f"no records from {waiting} for {timeout_s:.0f} s")
            continue
        last_progress = time.monotonic()
        batch: list[Message] = []
        for message in messages:
            position = (message.topic(), message.partition())
            if position not in open_partitions:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - confluent-kafka's name for librdkafka's internal codes
                    open_partitions.discard(position)
                    continue
                raise BankguardError(f"reading {position[0]}[{position[1]}]: {error.str()}")
            stamp = message.timestamp()[1]
            if stamp >= window.end_ms:
                open_partitions.discard(position)
                consumer.incremental_unassign([TopicPartition(*position)])
                continue
            if stamp >= window.start_ms:
                batch.append(message)
        if batch:
            yield batch
