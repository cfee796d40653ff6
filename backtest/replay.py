"""Replay a time range of topics into shadow topics, for a shadow worker to score live.

A record keeps its partition number, key, value, headers and timestamp (the event
time), so a worker on the shadow prefix sees the same entities on the same partitions
in the same order as production did. Partitions are merged by timestamp, never
reordered inside: per-key order is exact. A JSON checkpoint after every flushed batch
makes a replay resumable: after Ctrl-C without a record published twice, after a crash
with at most the records since the last checkpoint published again.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from bankguard.errors import BankguardError
from bankguard.kafka import TopicSpec, ensure_topics, produce, producer_config
from bankguard.settings import Settings
from bankguard.topic_range import Position, TimeRange, iso_ms, next_offset, partition_counts, position_of, read_range
from bankguard.topics import Topics

BATCH = 5_000  # records per flush and checkpoint
PACED_CHECKPOINT_S = 1.0  # a paced replay also checkpoints in gaps this often, so little is redone
READ_AHEAD = 2 * BATCH  # records buffered for the timestamp merge across partitions


def resolve_topics(spec: str, prefix: str) -> list[str]:
    """Topic names for ``all``, scenario keys (``credit_card``) or literal names, comma-separated."""
    topics = Topics(prefix)
    if spec.strip() == "all":
        return sorted(topics.scenario_topics.values())
    named = topics.named(spec)
    if not named:
        raise BankguardError("--topics: give topic names, scenario keys such as credit_card, or all")
    return sorted(set(named))


@dataclass(frozen=True)
class ReplayPlan:
    """What is replayed where; its parameters name the checkpoint (speed may change on resume)."""

    topics: tuple[str, ...]
    window: TimeRange
    to_prefix: str = "shadow."

    def __post_init__(self) -> None:
        if not self.to_prefix:
            raise BankguardError("--to-prefix must not be empty: a topic cannot be replayed into itself")
        if not self.topics:
            raise BankguardError("no topics to replay")
        clash = sorted(set(self.topics) & {self.target(topic) for topic in self.topics})
        if clash:
            raise BankguardError(f"{clash[0]} is both a source and a target; choose another --to-prefix")

    def target(self, topic: str) -> str:
        return self.to_prefix + topic

    def params(self) -> dict[str, object]:
        return {"topics": sorted(self.topics), "from": iso_ms(self.window.start_ms), "to": iso_ms(self.window.end_ms),
                "from_ms": self.window.start_ms, "to_ms": self.window.end_ms, "to_prefix": self.to_prefix}

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:12]


def default_checkpoint_path(settings: Settings, plan: ReplayPlan) -> Path:
    """One file per parameter set, so rerunning the same command finds its own progress."""
    return settings.run_dir / "replay" / f"{plan.digest}.json"


@dataclass
class Checkpoint:
    """Next source offset per partition, records replayed so far, and whether the range is done."""

    path: Path
    plan: ReplayPlan
    offsets: dict[Position, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # per target topic, all runs
    complete: bool = False

    @property
    def replayed(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def open(cls, path: Path, plan: ReplayPlan, *, restart: bool = False) -> Checkpoint:
        """The saved progress of ``plan`` at ``path``, or a fresh one (none yet, or ``restart``)."""
        if restart or not path.exists():
            return cls(path, plan)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            params, complete = data["params"], data["complete"]
            offsets = {(topic, int(part)): int(offset)
                       for topic, parts in data["offsets"].items() for part, offset in parts.items()}
            counts = {str(topic): int(n) for topic, n in data["counts"].items()}
            if not isinstance(complete, bool) or not isinstance(params, dict):
                raise TypeError("bad field types")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BankguardError(f"cannot read checkpoint {path} ({type(exc).__name__}: {exc}); "
                                 "delete it or pass --restart") from None
        if params != plan.params():
            raise BankguardError(f"checkpoint {path} belongs to another replay (topics {params.get('topics')}, "
                                 f"{params.get('from')} to {params.get('to')}); pass --restart or another --checkpoint")
        return cls(path, plan, offsets, counts, complete)

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename): a crash leaves the old or the new one."""
        offsets: dict[str, dict[str, int]] = {}
        for (topic, part), offset in sorted(self.offsets.items()):
            offsets.setdefault(topic, {})[str(part)] = offset
        text = json.dumps({"params": self.plan.params(), "offsets": offsets, "counts": self.counts,
                           "complete": self.complete}, indent=2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)


@dataclass
class ReplayResult:
    """This run's counts (``replayed``, ``failed``) and where it ended; updated live for progress."""

    replayed: int = 0
    failed: int = 0
    first_error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # per target topic, this run's checkpointed records
    event_ms: int | None = None  # timestamp of the last record published
    elapsed_s: float = 0.0
    complete: bool = False
    stopped: bool = False

    @property
    def rate(self) -> float:
        return self.replayed / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Merge:
    """Buffered records, popped in timestamp order across partitions, offset order within one."""

    def __init__(self) -> None:
        self._queues: dict[Position, deque[Message]] = {}
        self._heads: list[tuple[int, Position]] = []  # one entry per non-empty queue: its head
        self.size = 0

    def extend(self, batch: list[Message]) -> None:
        for message in batch:
            position = position_of(message)
            waiting = self._queues.setdefault(position, deque())
            if not waiting:
                heapq.heappush(self._heads, (message.timestamp()[1], position))
            waiting.append(message)
        self.size += len(batch)

    def peek(self) -> Message | None:
        return self._queues[self._heads[0][1]][0] if self._heads else None

    def pop(self) -> Message:
        _, position = heapq.heappop(self._heads)
        waiting = self._queues[position]
        message = waiting.popleft()
        if waiting:
            heapq.heappush(self._heads, (waiting[0].timestamp()[1], position))
        self.size -= 1
        return message


class _Prefetch:
    """Reads ``read_range`` in a thread, so waiting for Kafka never delays a paced record."""

    _END = object()

    def __init__(self, batches: Generator[list[Message], None, None]) -> None:
        self._batches = batches
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._closing = threading.Event()
        self.done = False
        self._thread = threading.Thread(target=self._run, name="replay-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        item: object = self._END
        try:
            for batch in self._batches:
                if not self._put(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            item = exc
        finally:
            self._batches.close()
        self._put(item)

    def _put(self, item: object) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout_s: float) -> list[Message] | None:
        """The next batch, or None when none came within ``timeout_s`` or the range is read."""
        if self.done:
            return None
        try:
            item = self._queue.get(timeout=timeout_s) if timeout_s > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is self._END:
            self.done = True
            return None
        if isinstance(item, BaseException):
            self.done = True
            raise item
        return item

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)


def replay(settings: Settings, plan: ReplayPlan, checkpoint: Checkpoint | None = None, *, speed: float = 0.0,
           should_stop: Callable[[], bool] = lambda: False,
           on_publish: Callable[[Message], None] | None = None,
           on_progress: Callable[[ReplayResult], None] | None = None) -> ReplayResult:
    """Publish the records of ``plan`` from the checkpoint on; return this run's result.

    ``speed`` > 0 spaces records by their timestamp difference / ``speed`` in wall time
    (0: as fast as possible). ``on_publish`` sees each source record as it is handed to
    the producer. A failure stops the run: a record the producer refuses (too large)
    stops its partition just before it; a failed delivery keeps the partition's checkpoint
    before the unconfirmed batch, so a rerun retries (and may repeat part of) that batch.
    ``should_stop`` ends the run cleanly: everything published is checkpointed, so a rerun
    continues without a duplicate. Raises ``BankguardError`` when the range holds no record.
    """
    checkpoint = checkpoint or Checkpoint.open(default_checkpoint_path(settings, plan), plan)
    result = ReplayResult(complete=checkpoint.complete)
    if checkpoint.complete:
        return result
    partitions = partition_counts(settings, plan.topics)
    started = last_save = last_progress = time.monotonic()
    failed: set[Position] = set()  # a delivery failed: this batch of the partition is not checkpointed
    refused: set[Position] = set()  # a record was refused on produce: the partition stops before it
    pending: dict[Position, list[int]] = {}  # since the last checkpoint: [next offset, records]

    def fail(position: Position, reason: str, into: set[Position] = failed) -> None:
        into.add(position)
        result.failed += 1
        result.first_error = result.first_error or f"{plan.target(position[0])}[{position[1]}]: {reason}"

    def on_delivery(err: KafkaError | None, message: Message) -> None:
        if err is not None:
            topic, partition = position_of(message)
            fail((topic[len(plan.to_prefix):], partition), err.str())

    def save() -> None:
        nonlocal last_save
        undelivered = producer.flush(30)
        for position, (offset, count) in pending.items():
            if undelivered:
                fail(position, f"{undelivered} record(s) not acknowledged within 30 s")
            if position not in failed:
                target = plan.target(position[0])
                checkpoint.offsets[position] = offset
                checkpoint.counts[target] = checkpoint.counts.get(target, 0) + count
                result.counts[target] = result.counts.get(target, 0) + count
        pending.clear()
        checkpoint.save()
        last_save = time.monotonic()

    producer = Producer(producer_config(settings, **{"delivery.report.only.error": True, "log_level": 0})
                        | {"on_delivery": on_delivery})
    prefetch = _Prefetch(read_range(settings, plan.topics, plan.window, resume=dict(checkpoint.offsets),
                                    batch_size=BATCH))
    merge = _Merge()
    anchor: tuple[float, int] | None = None  # (wall clock, timestamp) of the first paced record
    unsaved = 0

    def fill(wait_s: float) -> None:
        batch = prefetch.get(wait_s)
        while batch is not None:
            merge.extend(batch)
            batch = prefetch.get(0) if merge.size < READ_AHEAD else None

    try:
        while merge.size < READ_AHEAD and not prefetch.done and not should_stop():
            fill(0.1)  # a full buffer first: the merge sees every partition's first records
        if merge.size:  # before the first record is paced: creating topics takes a while
            ensure_topics(settings, [TopicSpec(plan.target(t), n) for t, n in partitions.items()])
        while not should_stop() and not result.failed:
            if merge.size < READ_AHEAD:
                fill(0 if merge.size or prefetch.done else 0.1)
            message = merge.peek()
            if message is None:
                if prefetch.done:
                    break
                continue
            stamp = message.timestamp()[1]
            if speed > 0:
                anchor = anchor or (time.monotonic(), stamp)
                wait = anchor[0] + (stamp - anchor[1]) / 1000 / speed - time.monotonic()
                if wait > 0:
                    if unsaved and wait > 0.1 and time.monotonic() - last_save >= PACED_CHECKPOINT_S:
                        save()  # in a gap between records, where flushing delays none
                        unsaved = 0
                    else:
                        producer.poll(min(wait, 0.05))
                    continue  # a record read meanwhile may be earlier: peek again
            merge.pop()
            position = position_of(message)
            if position in failed or position in refused:
                continue
            try:
                produce(producer, plan.target(position[0]), message.value(), message.key(), stamp,
                        partition=position[1], headers=message.headers())  # a list: repeated names kept
            except KafkaException as exc:
                fail(position, exc.args[0].str(), refused)
                continue
            producer.poll(0)  # delivery reports: a failure stops the run early
            mark = pending.setdefault(position, [0, 0])
            mark[0], mark[1] = next_offset(message), mark[1] + 1
            result.replayed, result.event_ms, unsaved = result.replayed + 1, stamp, unsaved + 1
            if on_publish is not None:
                on_publish(message)
            now = time.monotonic()
            if unsaved >= BATCH:
                save()
                unsaved = 0
            if on_progress is not None and now - last_progress >= 0.2:
                result.elapsed_s, last_progress = now - started, now
                on_progress(result)
        result.stopped = not result.failed and (merge.size > 0 or not prefetch.done)
    finally:
        prefetch.close()
        if pending:
            save()
    result.replayed = sum(result.counts.values())
    result.elapsed_s = time.monotonic() - started
    if not result.stopped and not result.failed:
        if checkpoint.replayed == 0:
            raise BankguardError(f"no records in {', '.join(plan.topics)} between "
                                 f"{iso_ms(plan.window.start_ms)} and {iso_ms(plan.window.end_ms)}")
        checkpoint.complete = result.complete = True
        checkpoint.save()
    if on_progress is not None:
        on_progress(result)
    return result
