"""Producers (librdkafka) and Faust (aiokafka) must put a key on the same partition,
or one entity's state splits between workers."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer

from bankguard.kafka import TopicSpec, ensure_topics, producer_config
from kafka_helpers import read_topic

KEYS = [f"CARD-{i:07d}".encode() for i in range(200)]


async def _send_with_aiokafka(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # Faust's own transport
    await producer.start()
    try:
        for key in KEYS:
            await producer.send(topic, b"x", key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _partitions(settings, topic: str) -> dict[bytes, int]:
    return {r.key: r.partition for r in read_topic(settings, topic, expected=len(KEYS))}


def test_producer_and_faust_agree_on_key_partitions(settings):
    prefix = settings.topics.prefix
    ensure_topics(settings, [TopicSpec(f"{prefix}.p.{name}", 6) for name in ("ours", "faust", "crc")])

    ours = Producer(producer_config(settings))
    crc32 = Producer(producer_config(settings, partitioner="consistent_random"))
    for key in KEYS:
        ours.produce(f"{prefix}.p.ours", b"x", key)
        crc32.produce(f"{prefix}.p.crc", b"x", key)
    ours.flush(10)
    crc32.flush(10)
    asyncio.run(_send_with_aiokafka(settings.kafka.bootstrap_servers, f"{prefix}.p.faust"))

    faust_side = _partitions(settings, f"{prefix}.p.faust")
    assert _partitions(settings, f"{prefix}.p.ours") == faust_side
    # The control: librdkafka's default partitioner disagrees, so the check can fail.
    assert _partitions(settings, f"{prefix}.p.crc") != faust_side
