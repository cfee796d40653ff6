"""Reading topics back in tests: assign every partition from the start (no group join)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bankguard.kafka import client_config
from bankguard.settings import Settings


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int


def read_topic(settings: Settings, topic: str, *, expected: int | None = None,
               timeout_s: float = 30.0, idle_s: float = 2.0) -> list[Record]:
    """All records of ``topic``: until ``expected`` arrived, or nothing came for ``idle_s``."""
    consumer = Consumer(client_config(settings.kafka) | {
        "group.id": "test-reader", "enable.auto.commit": False, "fetch.wait.max.ms": 10,
    })
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if expected is not None and len(records) >= expected:
                break
            if expected is None and time.monotonic() - last > idle_s:
                break
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                last = time.monotonic()
                records.append(Record(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                      msg.value(), dict(msg.headers() or []), msg.timestamp()[1]))
    finally:
        consumer.close()
    return records
