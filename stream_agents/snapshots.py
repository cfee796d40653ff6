"""Snapshots of the entity-state changelog, so recovery reads a bounded tail instead of all history.

The embedded broker neither compacts topics nor deletes records, so the changelog keeps every
state ever written. When a changelog partition has grown by more than ``SNAPSHOT_RATIO`` times its
live keys since its last snapshot, the commit point writes every live state of that partition
again (a snapshot) and then records where the snapshot starts in the index topic
(``<changelog>-snapshots``, same partitions; its last record per partition is the latest start).
Recovery begins at the latest start: everything before it is superseded by the snapshot.

The recorded start is the partition's end offset read *before* the snapshot is written, so it can
only be early (a record someone else wrote in between, or the embedded broker reporting an end
short of the last batch), never late: reading from it always covers the whole snapshot.
"""

from __future__ import annotations

import threading

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition

from bankguard.kafka import TopicSpec, client_config, ensure_topics
from bankguard.settings import Settings

SNAPSHOT_RATIO = 2  # changelog records since the last snapshot, per live key, that trigger the next
SNAPSHOT_MIN_RECORDS = 2_000  # below this a partition's tail is cheap to read anyway


def index_topic(changelog: str) -> str:
    return f"{changelog}-snapshots"


def key_partition(key: bytes, partitions: int) -> int:
    """The input (and changelog) partition of a state key ``<scenario>:<entity_id>``: the
    producers key events by entity id, partitioned with murmur2 like Faust and Java clients."""
    entity = key.split(b":", 1)[1]
    return (murmur2(entity) & 0x7FFFFFFF) % partitions


class SnapshotIndex:
    """Reads and positions of the changelog and its snapshot index (blocking calls: run them in
    an executor, or at a rebalance when the stream waits anyway)."""

    def __init__(self, settings: Settings, changelog: str) -> None:
        self.changelog = changelog
        self.topic = index_topic(changelog)
        self.partitions = settings.topics.partitions
        ensure_topics(settings, [TopicSpec(self.topic, self.partitions)])
        self._lock = threading.Lock()  # one librdkafka consumer, used from the loop and executors
        self._consumer = Consumer(client_config(settings.kafka) | {
            "group.id": f"{changelog}-snapshot-reader",  # required; never joins
            "enable.auto.commit": False, "fetch.wait.max.ms": 10, "log_level": 3,
        })

    def end(self, partition: int, topic: str | None = None) -> int:
        with self._lock:
            return int(self._consumer.get_watermark_offsets(TopicPartition(topic or self.changelog, partition),
                                                            timeout=10, cached=False)[1])

    def latest(self, partition: int) -> int | None:
        """Offset in the changelog where ``partition``'s latest snapshot starts, if there is one."""
        end = self.end(partition, self.topic)
        if end == 0:
            return None
        with self._lock:
            self._consumer.assign([TopicPartition(self.topic, partition, end - 1)])
            try:
                for _ in range(50):
                    message = self._consumer.poll(0.2)
                    value = message.value() if message is not None and message.error() is None else None
                    if value:
                        return int(value)
            finally:
                self._consumer.unassign()
        raise RuntimeError(f"snapshot index {self.topic}[{partition}]: last record unreadable")

    def close(self) -> None:
        self._consumer.close()


class SnapshotPolicy:
    """Counts the changelog records per partition since its last snapshot; says when one is due."""

    def __init__(self, index: SnapshotIndex) -> None:
        self.index = index
        self._since: dict[int, int] = {}

    def seen(self, partition: int) -> bool:
        return partition in self._since

    def start(self, partition: int) -> None:
        """Count from what the changelog already holds after the latest snapshot (blocking)."""
        self._since[partition] = self.index.end(partition) - (self.index.latest(partition) or 0)

    def wrote(self, partition: int, records: int) -> None:
        self._since[partition] = self._since.get(partition, 0) + records

    def due(self, partition: int, live_keys: int) -> bool:
        return self._since.get(partition, 0) >= max(SNAPSHOT_MIN_RECORDS, SNAPSHOT_RATIO * live_keys)

    def snapshotted(self, partition: int, records: int) -> None:
        self._since[partition] = records

    def forget(self) -> None:
        """After a rebalance: recount the partitions when they are written again."""
        self._since.clear()
