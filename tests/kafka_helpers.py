"""Reading topics back and waiting on offsets in tests, never on silence.

A test knows it has everything when the broker says so: a partition is read when the
consumer reaches its end (librdkafka's partition EOF, from the fetch response's high
watermark; the embedded broker's ListOffsets answer lags behind the last batch, so it is
not used), and a worker has scored what its input topics hold when its group's committed
offsets reach their ends (it commits only after the alerts of those events are
acknowledged). So "no alert" is read after proof that the events were scored.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from bankguard.kafka import client_config
from bankguard.settings import Settings
from bankguard.topics import Topics

Position = tuple[str, int]  # topic, partition
POLL_S = 0.2  # between two looks at the broker's offsets


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int
    header_list: list[tuple[str, bytes]] | None  # as the consumer returns them: order and repeats kept


def wait_until(condition: Callable[[], object], what: str | Callable[[], str], *, timeout_s: float = 30.0,
               check: Callable[[], None] = lambda: None, every_s: float = POLL_S) -> None:
    """Poll ``condition`` every ``every_s`` until it holds; fail naming ``what`` after ``timeout_s``
    (a callable ``what`` is asked at the failure, so it can tell the last value seen).
    ``check`` runs on each poll (say, that the process being waited on is still alive)."""
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        if condition():
            return
        assert time.monotonic() < deadline, f"{what() if callable(what) else what}: not within {timeout_s:g} s"
        time.sleep(every_s)


def _consumer(settings: Settings, group: str | None = None) -> Consumer:
    return Consumer(client_config(settings.kafka) | {
        "group.id": group or f"test-reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "enable.partition.eof": True, "fetch.wait.max.ms": 10})


def _record(msg: Message) -> Record:
    return Record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                  dict(msg.headers() or []), msg.timestamp()[1], msg.headers())


def read_to_end(settings: Settings, topics: Iterable[str], *, expected: int | None = None,
                timeout_s: float = 30.0) -> tuple[list[Record], dict[Position, int]]:
    """Every record of ``topics`` (offset order per partition) and each partition's end offset,
    once every partition has been read to its end; with ``expected``, not before that many
    records arrived (so one too many is seen too)."""
    consumer = _consumer(settings)
    records: list[Record] = []
    ends: dict[Position, int] = {}  # positions read to their end, and where that is
    try:
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for topic in topics
                      for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        consumer.assign(partitions)
        deadline = time.monotonic() + timeout_s
        while len(ends) < len(partitions) or (expected is not None and len(records) < expected):
            assert time.monotonic() < deadline, (
                f"{len(records)} records of {expected or 'all'} within {timeout_s:g} s; "
                f"read to the end: {sorted(ends)} of {len(partitions)} partitions")
            for msg in consumer.consume(1000, POLL_S):
                position = (msg.topic(), msg.partition())
                error = msg.error()
                if error is None:
                    records.append(_record(msg))
                    ends.pop(position, None)  # more may follow
                elif error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - confluent-kafka's name for librdkafka's internal codes
                    ends[position] = msg.offset()
                else:
                    raise AssertionError(f"reading {position}: {error.str()}")
    finally:
        consumer.close()
    return records, ends


def read_topic(settings: Settings, topic: str, *, expected: int | None = None,
               timeout_s: float = 30.0) -> list[Record]:
    """Every record ``topic`` holds, read to its end (see :func:`read_to_end`)."""
    return read_to_end(settings, [topic], expected=expected, timeout_s=timeout_s)[0]


def topic_ends(settings: Settings, topics: Iterable[str]) -> dict[Position, int]:
    """The end offset (next offset to be written) of every partition of ``topics``."""
    return read_to_end(settings, topics)[1]


def committed(settings: Settings, positions: Iterable[Position], group: str | None = None) -> dict[Position, int]:
    """The committed offset of consumer group ``group`` (the worker's by default) per position;
    negative where it has committed none."""
    consumer = _consumer(settings, group or Topics(settings.topics.prefix).worker_group)
    try:
        found = consumer.committed([TopicPartition(t, p) for t, p in positions], timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in found}
    finally:
        consumer.close()


def wait_committed(settings: Settings, ends: Mapping[Position, int], *, group: str | None = None,
                   timeout_s: float = 60.0, check: Callable[[], None] = lambda: None) -> None:
    """Wait until ``group`` (the worker's by default) has committed every position up to ``ends``:
    every record before them is consumed and what it caused acknowledged."""
    wanted = {position: end for position, end in ends.items() if end > 0}

    def caught_up() -> bool:
        return all(offset >= wanted[position] for position, offset in committed(settings, wanted, group).items())

    wait_until(caught_up, f"the group committing {wanted}", timeout_s=timeout_s, check=check)


def scenario_ends(settings: Settings) -> dict[Position, int]:
    """End offsets of every scenario topic: what the worker must have consumed."""
    return topic_ends(settings, Topics(settings.topics.prefix).scenario_topics.values())
