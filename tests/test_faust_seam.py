"""Each override in ``stream_agents/faust_seam.py`` still takes effect on the installed Faust and
aiokafka: real apps, real consumers, the real embedded broker. Deleting an override, or aiokafka
renaming what one sets, fails a test here by name."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import aiokafka
import faust
import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from faust.types import TP, Message

from bankguard.kafka import TopicSpec, client_config, ensure_topics, producer_config
from bankguard.rules.config import load_rules
from bankguard.settings import Settings
from bankguard.stream_agents import faust_seam
from bankguard.stream_agents.app import create_app
from bankguard.stream_agents.faust_seam import (
    FETCH_WAIT_ATTRIBUTE, PINNED, SeamError, TransportOptions, WorkerApp, check_versions,
)
from bankguard.stream_agents.rules_control import RulesWatcher
from bankguard.stream_agents.worker import run_worker
from bankguard.topics import Topics
from kafka_helpers import read_topic
from scoring_helpers import event, send

MESSAGES = 300
PARTITIONS = 2


def test_installed_versions_are_the_pinned_ones():
    check_versions()


def test_other_versions_are_refused_in_one_line():
    with pytest.raises(SeamError) as refused:
        check_versions(lambda package: "9.9.9")
    message = str(refused.value)
    assert "\n" not in message
    assert all(f"{package} 9.9.9 (overrides written for {pinned})" in message for package, pinned in PINNED.items())


def test_the_worker_checks_versions_before_anything_else(monkeypatch):
    monkeypatch.setitem(PINNED, "aiokafka", "0.0.1")
    with pytest.raises(SeamError, match="aiokafka"):
        run_worker(Settings())  # refused before the port check, the topics or the rules


async def test_stream_buffers_survive_a_resume_of_a_flow_that_is_on():
    """Recovery resumes the flow again after seeking the stream partitions: events buffered in
    between are already fetched past, and clearing them would lose them."""
    app = WorkerApp("seam-flow", broker="bankguard://127.0.0.1:1", store="memory://", web_enabled=False)
    buffer = app.channel().queue  # a stream's buffer
    app.flow_control.resume()  # recovery turns the flow on to read the changelogs
    buffer.put_nowait("fetched after the seek")
    app.flow_control.resume()
    assert buffer.qsize() == 1
    app.flow_control.suspend()  # a rebalance: what is buffered now is read again after its seek
    app.flow_control.resume()
    assert buffer.qsize() == 0


class Fetcher:
    """What ``_drain_messages`` reads of its fetcher: whether it stopped."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()


async def test_a_seek_during_a_fetch_is_no_gap_in_the_committable_offsets(monkeypatch):
    """Recovery resumes the stream partitions, then seeks them to their committed offsets while the
    fetch taken before is still being handed over: the read offset drops back to the committed one
    and the rest of that fetch looks like a jump. Recorded as a gap, offsets already handed over
    were counted twice among the acked ones and the commit crawled one offset per commit interval;
    here every offset handed over is committable at once. A real gap is still one."""
    app = WorkerApp("seam-seek", broker="bankguard://127.0.0.1:1", store="memory://", web_enabled=False)
    consumer = app.consumer
    tp = TP("seam-seek-in", 0)
    committed = 100
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: topic == tp.topic)

    async def seek_to_committed() -> dict[TP, int]:
        return {tp: committed}

    monkeypatch.setattr(consumer, "seek_to_committed", seek_to_committed)
    handed: list[Message] = []

    async def callback(message: Message) -> None:
        handed.append(message)

    consumer.callback = callback
    fetcher = Fetcher()

    def records(offsets: Iterable[int]) -> list[tuple[TP, Message]]:
        return [(tp, Message(tp.topic, tp.partition, o, 0.0, 0, None, b"k", b"v", None)) for o in offsets]

    async def seek_during_the_first_fetch():
        for record in records(range(committed, committed + 10)):
            yield record
        await consumer.perform_seek()  # what recovery awaits meanwhile
        for record in records(range(committed + 10, committed + 20)):
            yield record

    async def fetch_again_from_the_seek():
        for record in records(range(committed, committed + 30)):
            yield record

    async def a_real_gap():
        for record in records([committed + 30, committed + 35]):  # 131-134 never arrive
            yield record
        fetcher.stop()

    fetches = iter([seek_during_the_first_fetch, fetch_again_from_the_seek, a_real_gap])
    monkeypatch.setattr(consumer, "getmany", lambda timeout: next(fetches)())
    app.flow_control.resume()
    await consumer.perform_seek()  # the assignment starts at the committed offset
    await consumer._drain_messages(fetcher)  # noqa: SLF001 - the override under test

    assert sorted({m.offset for m in handed}) == [*range(committed, committed + 31), committed + 35]
    for message in handed[:-1]:  # the stream acks what it was handed, in order
        consumer.ack(message)
    chosen = consumer._filter_committable_offsets([tp])  # noqa: SLF001 - the offsets Faust commits
    assert chosen == {tp: committed + 31}
    consumer._committed_offset.update(chosen)  # noqa: SLF001 - as _commit_offsets records a commit
    consumer.ack(handed[-1])
    assert consumer._filter_committable_offsets([tp]) == {tp: committed + 36}  # noqa: SLF001 - over the real gap


def plain_app(settings: Settings, datadir: Path) -> WorkerApp:
    return WorkerApp(
        f"{settings.topics.prefix}-seam", broker=f"bankguard://{settings.kafka.bootstrap_servers}",
        store="memory://", web_enabled=False, broker_commit_interval=0.2, broker_heartbeat_interval=1.0,
        broker_session_timeout=settings.kafka.session_timeout_s, consumer_auto_offset_reset="earliest",
        topic_disable_leader=True, topic_allow_declare=False, key_serializer="raw", value_serializer="raw",
        datadir=str(datadir),
    )


@asynccontextmanager
async def consuming(settings: Settings, options: TransportOptions, datadir: Path,
                    on_message: Callable[[bytes], None]) -> AsyncIterator[WorkerApp]:
    """A started in-process app with one agent over a fresh topic of ``MESSAGES`` messages."""
    topic = f"{settings.topics.prefix}-seam-in"
    ensure_topics(settings, [TopicSpec(topic, PARTITIONS)])  # producers never auto-create topics
    producer = Producer(producer_config(settings))
    for i in range(MESSAGES):
        producer.produce(topic, b"m%d" % i, b"k%d" % i, partition=i % PARTITIONS)
    assert producer.flush(15) == 0
    app = plain_app(settings, datadir)
    source = app.topic(topic, key_type=bytes, value_type=bytes, partitions=PARTITIONS)
    app.use_transport_options(options)  # after the topic: Faust has built the transport by now

    @app.agent(source)
    async def take(stream: faust.StreamT) -> None:
        async for value in stream:
            on_message(value)

    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def no_commit_point() -> None:
    return None


@pytest.mark.broker
async def test_fetch_wait_reaches_aiokafkas_fetcher(settings, tmp_path):
    """The configured wait is the one aiokafka's fetcher holds a fetch for (Faust passes 1,500 ms)."""
    seen: list[bytes] = []
    async with consuming(settings, TransportOptions(fetch_max_wait_ms=7), tmp_path, seen.append) as app:
        await until(lambda: len(seen) == MESSAGES, "the messages")
        fetcher = app.consumer._thread._consumer._fetcher  # noqa: SLF001 - what the override must reach
        assert fetcher._fetch_max_wait_ms == 7  # noqa: SLF001 - as above


async def test_a_renamed_fetch_wait_attribute_fails_loudly(settings, tmp_path, monkeypatch):
    """If aiokafka renames the attribute the override sets, the consumer is refused, not slow."""
    original = aiokafka.AIOKafkaConsumer.__init__

    def renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._fetch_wait_renamed = self.__dict__.pop(FETCH_WAIT_ATTRIBUTE)

    monkeypatch.setattr(aiokafka.AIOKafkaConsumer, "__init__", renamed)
    app = plain_app(settings, tmp_path)
    with pytest.raises(SeamError, match=FETCH_WAIT_ATTRIBUTE):
        app.consumer._thread._create_worker_consumer(app.transport)  # noqa: SLF001 - the override itself


@pytest.mark.broker
async def test_commit_point_runs_before_every_offset_commit(settings, tmp_path, monkeypatch):
    """Faust still calls ``_handle_attached`` between choosing and committing offsets, and the
    commit point runs there: every commit is preceded by a completed commit point."""
    steps: list[str] = []

    async def commit_point() -> None:
        steps.append("commit point started")
        await asyncio.sleep(0.01)  # a commit point waits for acknowledgements
        steps.append("commit point done")

    commit = faust_seam.ConsumerThread.commit

    async def recorded_commit(self, offsets):
        steps.append("offsets committed")
        return await commit(self, offsets)

    monkeypatch.setattr(faust_seam.ConsumerThread, "commit", recorded_commit)
    seen: list[bytes] = []
    async with consuming(settings, TransportOptions(commit_point=commit_point), tmp_path, seen.append) as app:
        await until(lambda: len(seen) == MESSAGES, "the messages")
        await until(lambda: committed(settings, app) == MESSAGES, "every offset committed")
    commits = [i for i, step in enumerate(steps) if step == "offsets committed"]
    assert commits
    assert all(i >= 2 and steps[i - 2:i] == ["commit point started", "commit point done"] for i in commits), steps


def end_offsets(settings: Settings, topic: str) -> int:
    """Records written to ``topic`` so far, summed over its partitions (high watermarks)."""
    reader = Consumer(client_config(settings.kafka) | {"group.id": "seam-watermarks"})
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        reader.close()


def committed(settings: Settings, app: WorkerApp) -> int:
    """Offsets the app's group has committed on the broker, summed over the partitions."""
    topic = f"{settings.topics.prefix}-seam-in"
    reader = Consumer(client_config(settings.kafka) | {"group.id": app.conf.id, "enable.auto.commit": False})
    try:
        offsets = reader.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        reader.close()
    return sum(max(0, tp.offset) for tp in offsets)


@pytest.mark.broker
async def test_messages_take_the_lean_fetch_loop(settings, tmp_path):
    """The copy of ``_drain_messages`` is the loop that runs (Faust's own counts nothing)."""
    seen: list[bytes] = []
    async with consuming(settings, TransportOptions(commit_point=no_commit_point), tmp_path, seen.append) as app:
        await until(lambda: len(seen) == MESSAGES, "the messages")
        assert app.consumer.lean_handoffs == MESSAGES


@pytest.mark.broker
async def test_revoking_partitions_writes_the_scored_state(settings, tmp_path):
    """The worker app's revoke handler makes the state of everything scored durable before the
    partitions move: nothing reaches the changelog before (commits are minutes apart), the
    entity's state does at the revocation."""
    slow = settings.model_copy(update={"worker": settings.worker.model_copy(update={"commit_interval_s": 600.0})})
    topics = Topics(slow.topics.prefix)
    watcher = RulesWatcher(slow, topics.rules_control, load_rules(slow.rules_path)).start()
    slow.worker.data_dir.mkdir(parents=True)
    app = create_app(slow, watcher)
    entity = f"E-{uuid.uuid4().hex[:6]}"
    await app.start()
    try:
        send(slow, [event("aml_kyc", entity, timedelta(0), amount=900_000.0, pep=True,
                          destination_country="IR")])
        alerts = await asyncio.to_thread(read_topic, slow, topics.alerts, expected=1)
        assert [orjson.loads(a.value)["entity_id"] for a in alerts][:1] == [entity]
        assert end_offsets(slow, topics.state_changelog) == 0
        await app.on_partitions_revoked.send(set())
        written = await asyncio.to_thread(read_topic, slow, topics.state_changelog, expected=1)
        assert {r.key for r in written} == {f"aml_kyc:{entity}".encode()}
    finally:
        await app.stop()
        watcher.stop()
