"""Everything the worker writes (alerts, dead letters, state), through one librdkafka producer,
and the commit point that makes it durable in the order recovery relies on.

Alerts and dead letters are sent as soon as their batch is scored (an alert's latency is
scoring plus one produce), while state is written at commit points only. Faust runs the
commit point before it commits input offsets (see :mod:`~bankguard.stream_agents.faust_seam`),
so committed offsets never run ahead of the alerts or the state they caused: processing is
at-least-once, never at-most-once.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from faust.exceptions import ProducerSendError

from bankguard.kafka import produce, producer_config
from bankguard.settings import Settings
from bankguard.stream_agents.dead_letters import DeadLetter, truncated_copy
from bankguard.stream_agents.snapshots import SnapshotPolicy
from bankguard.stream_agents.state import StateStore
from bankguard.topics import Topics

RECORD_MAX_BYTES = 1_000_000  # librdkafka's message.max.bytes, unless the settings raise it
RECORD_OVERHEAD_BYTES = 1_024  # what a record adds to its key, value and headers, at most

MAX_PENDING = 50_000  # unacknowledged records at which the worker stops taking batches (librdkafka holds 100,000)
ROOM_POLL_S = 0.05  # how often a full sink is checked for room


class DeliveryFailed(ProducerSendError):
    """The broker did not acknowledge a record; offsets must not be committed (Faust crashes
    the worker on a ``ProducerSendError`` during a commit instead of committing)."""


class BatchSink:
    """Sends records and waits for the acknowledgement of those sent before a point.

    ``flush`` waits only for the records sent before it was called: batches keep sending while
    a commit point waits, and librdkafka's own flush would wait for them too (forever, under
    a steady stream).

    A broker outage is waited out, however long: librdkafka retries every record until the
    broker acknowledges it (``message.timeout.ms=0``), ``flush`` waits without a deadline, and
    :meth:`wait_for_room` stops the worker taking batches while ``MAX_PENDING`` records wait.
    Only an error the broker answers with (unknown topic, record too large) fails a flush.
    """

    def __init__(self, settings: Settings, *, max_pending: int = MAX_PENDING) -> None:
        config = producer_config(settings, **{"linger.ms": 2, "message.timeout.ms": 0})
        self.producer = Producer(config)
        self.dlq = Topics(settings.topics.prefix).dlq
        self.max_bytes = int(config.get("message.max.bytes", RECORD_MAX_BYTES)) - RECORD_OVERHEAD_BYTES
        self.refused = 0  # records too large to send, replaced by a truncated copy in the DLQ
        self.max_pending = max_pending
        self.acknowledged = 0  # delivery reports served, successful or not: progress, for the stall watch
        self._sent = 0  # sequence number of the next record
        self._unacknowledged: set[int] = set()
        self._errors: list[str] = []

    @property
    def pending(self) -> int:
        """Records sent and not yet acknowledged."""
        return len(self._unacknowledged)

    def _delivered(self, seq: int, err: KafkaError | None, msg: Message) -> None:
        self._unacknowledged.discard(seq)
        self.acknowledged += 1
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None,
             headers: dict[str, bytes] | None = None) -> None:
        """Send a record, to be acknowledged before the next :meth:`flush` returns.

        A record too large for the producer is refused before it is registered (a commit would
        wait for it forever) and a truncated copy goes to the DLQ in its place.
        """
        size = len(value) + len(key or b"") + sum(len(name) + len(v) for name, v in (headers or {}).items())
        if size > self.max_bytes:
            self._refuse(topic, key, value, partition, headers)
            return
        seq, self._sent = self._sent, self._sent + 1
        self._unacknowledged.add(seq)  # before produce: a delivery report may come from another thread
        try:
            produce(self.producer, topic, value, key, partition=partition, headers=headers,
                    on_delivery=partial(self._delivered, seq))
        except KafkaException as exc:
            self._unacknowledged.discard(seq)
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            self._refuse(topic, key, value, partition, headers)

    def _refuse(self, topic: str, key: bytes | None, value: bytes, partition: int | None,
                headers: dict[str, bytes] | None) -> None:
        """The DLQ's truncated copy of a record too large to send (a dead letter keeps its
        own headers; any other record is described as an oversized output)."""
        self.refused += 1
        if topic != self.dlq or not headers:
            size = len(value) + len(key or b"")
            headers = (headers or {}) | DeadLetter("oversized", f"a {size:,}-byte record for {topic}", topic,
                                                   -1 if partition is None else partition, -1, None).headers()
        key, value, headers = truncated_copy(key, value, headers)
        self.send(self.dlq, key, value, headers=headers)

    def poll(self) -> None:
        """Serve delivery reports without waiting (a failure surfaces at the next flush)."""
        self.producer.poll(0)

    async def wait_for_room(self) -> None:
        """Back-pressure: while the broker leaves ``max_pending`` records unacknowledged, wait
        (without blocking the event loop, so metrics and heartbeats go on) before the next batch."""
        while len(self._unacknowledged) >= self.max_pending:
            self.producer.poll(0)
            await asyncio.sleep(ROOM_POLL_S)

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every record sent before this call is acknowledged, or raise.

        No deadline by default: a stalled broker is waited out (the stall watch logs it and
        exports it), since giving up would crash the worker and lose nothing but its uptime.
        """
        mark = self._sent
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while min(self._unacknowledged, default=mark) < mark:
            if deadline is not None and time.monotonic() > deadline:
                waiting = sum(1 for seq in list(self._unacknowledged) if seq < mark)
                raise DeliveryFailed(f"{waiting} record(s) unacknowledged after {timeout_s:g} s")
            self.producer.poll(0.01)
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed("; ".join(errors[:3]))


class CommitPoint:
    """Makes what was scored so far durable: the alerts, then the state that absorbed their events.

    1. take the entity states serialized at the end of each batch since the last commit point
       (the batches' alerts are already sent: scoring a batch, serializing its states and
       sending its alerts do not yield), and, for a partition whose changelog has grown enough,
       every state it holds (a snapshot: see :mod:`~bankguard.stream_agents.snapshots`), taken
       at the same instant;
    2. wait until every record sent so far is acknowledged, which covers the alerts of every
       batch those states absorbed;
    3. write the states to the changelog and wait for that too; then each snapshot, and then
       where it starts in the snapshot index.

    State never lands before its alerts, so the redelivery check in the scorer never skips an
    event whose alerts were lost. Writing state here rather than per batch coalesces it: an
    entity seen in many batches between two commits is written once.
    """

    def __init__(self, sink: BatchSink, state: StateStore, changelog: str,
                 snapshots: SnapshotPolicy | None = None) -> None:
        self.sink = sink
        self.state = state
        self.changelog = changelog
        self.snapshots = snapshots
        self._lock = asyncio.Lock()  # states must land in the order they were taken

    async def __call__(self) -> None:
        async with self._lock:
            unwritten = self.state.take_unwritten()
            snapshots = self._due_snapshots(unwritten)  # no await since the take: the same instant
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.sink.flush)
            if unwritten:
                await self._write(loop, unwritten)
            for partition, states in snapshots.items():
                await self._snapshot(loop, partition, states)

    async def _write(self, loop: asyncio.AbstractEventLoop, unwritten: dict[bytes, tuple[int, bytes]]) -> None:
        last: dict[int, tuple[bytes, bytes]] = {}
        written: dict[int, int] = {}
        for key, (partition, value) in unwritten.items():
            if partition in last:
                self.sink.send(self.changelog, *last[partition], partition=partition)
            last[partition] = (key, value)
            written[partition] = written.get(partition, 0) + 1
        await loop.run_in_executor(None, self.sink.flush)
        self._send_last(last)
        await loop.run_in_executor(None, self.sink.flush)
        if self.snapshots is not None:
            for partition, records in written.items():
                if not self.snapshots.seen(partition):
                    await loop.run_in_executor(None, self.snapshots.start, partition)
                self.snapshots.wrote(partition, records)

    def _send_last(self, last: dict[int, tuple[bytes, bytes]]) -> None:
        # Each partition's last state goes out alone, as a batch of one: the embedded broker
        # reports a partition's end as the first offset of its last batch plus one, and
        # Faust recovers a table only up to that end.
        for partition, (key, value) in last.items():
            self.sink.send(self.changelog, key, value, partition=partition)

    def _due_snapshots(self, unwritten: dict[bytes, tuple[int, bytes]]) -> dict[int, dict[bytes, bytes]]:
        if self.snapshots is None:
            return {}
        partitions = self.snapshots.index.partitions
        live_keys = len(self.state.backing) // partitions  # an estimate is enough to pace snapshots
        due = {partition for partition, _ in unwritten.values() if self.snapshots.due(partition, live_keys)}
        return {partition: self.state.states_of(partition, partitions) for partition in due}

    async def _snapshot(self, loop: asyncio.AbstractEventLoop, partition: int, states: dict[bytes, bytes]) -> None:
        assert self.snapshots is not None
        index = self.snapshots.index
        start = await loop.run_in_executor(None, index.end, partition)
        items = list(states.items())
        for key, value in items[:-1]:
            self.sink.send(self.changelog, key, value, partition=partition)
        await loop.run_in_executor(None, self.sink.flush)
        if items:
            self._send_last({partition: items[-1]})
            await loop.run_in_executor(None, self.sink.flush)
        self.sink.send(index.topic, None, str(start).encode(), partition=partition)
        await loop.run_in_executor(None, self.sink.flush)
        self.snapshots.snapshotted(partition, len(items))
