"""Kafka client configuration and topic administration, shared by every client.

One function builds the confluent-kafka (librdkafka) configuration from settings so
producers, admin and replay agree on security and partitioning; Faust gets the same
settings translated in ``stream_agents.app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bankguard.errors import BankguardError
from bankguard.settings import KafkaSettings, Settings
from bankguard.topics import Topics

# Record headers as confluent-kafka takes and returns them: a dict, or a list that keeps repeated names.
Headers = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]
#: When the producer sent an event (epoch ms, wall clock): event time may be simulated, so the
#: pipeline's latency is measured from this, not from ``event_time``.
PRODUCED_MS_HEADER = "bankguard.produced_ms"
#: Fetch settings of consumers whose figures may trail by seconds (the investigations desk, the
#: evaluator). The embedded broker answers a fetch at once whenever anything is new, and a fetch that
#: returns records costs it time in proportion to the partition's length; at librdkafka's defaults
#: each such reader fetched several times a second and the broker's CPU climbed all run. Waiting for
#: a megabyte or two seconds bounds a reader to one fetch every two seconds.
TRAILING_FETCH: dict[str, str | int | float | bool] = {"fetch.wait.max.ms": 2_000, "fetch.min.bytes": 1 << 20}


def arrival_ms(headers: Headers | None) -> int | None:
    """The producer's send time from a record's headers, or None (no header, or not a number)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == PRODUCED_MS_HEADER and value is not None:
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            return int(text) if text.isdigit() else None
    return None


def client_config(kafka: KafkaSettings) -> dict[str, str | int | float | bool]:
    """librdkafka settings for the cluster, security included."""
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username or ""
        config["sasl.password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        )
    for key, path in (
        ("ssl.ca.location", kafka.ssl_cafile),
        ("ssl.certificate.location", kafka.ssl_certfile),
        ("ssl.key.location", kafka.ssl_keyfile),
    ):
        if path is not None:
            config[key] = str(path)
    return config


def producer_config(settings: Settings, **overrides: str | int | float | bool) -> dict:
    """Producer settings: murmur2 keys (same partitions as Faust/aiokafka), idempotent, never creating topics."""
    config = client_config(settings.kafka) | {
        # The Java/aiokafka partitioner; librdkafka's default (CRC32) would split
        # an entity's events across partitions from the worker's point of view.
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.producer.linger_ms,
        "batch.size": settings.producer.batch_size,
        "compression.type": settings.producer.compression,
        # Topics are created by `bankguard topics` / `up` with the configured partitions; one a
        # producer auto-created (after an embedded broker restart) would get the broker's default.
        "allow.auto.create.topics": False,
    }
    return config | overrides


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


def bankguard_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the stack needs, with its partition count."""
    topics = Topics(settings.topics.prefix)
    count = settings.topics.partitions
    specs = [TopicSpec(name, count) for name in topics.scenario_topics.values()]
    specs += [
        TopicSpec(topics.truth, count),
        TopicSpec(topics.alerts, count),
        TopicSpec(topics.cases, count, compacted=True),
        TopicSpec(topics.outcomes, count),
        TopicSpec(topics.dlq, 1),
        TopicSpec(topics.rules_control, 1, compacted=True),
        TopicSpec(topics.rules_audit, 1),
        TopicSpec(topics.state_changelog, count, compacted=True),
    ]
    return specs


def ensure_topics(settings: Settings, specs: Iterable[TopicSpec], timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (a partition count that differs is reported,
    since changing it would move keys between partitions).
    """
    # Quiet librdkafka: an unreachable cluster is reported once, below.
    admin = AdminClient(client_config(settings.kafka) | {"log_level": 0})
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise BankguardError(
            f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc.args[0].str()}"
        ) from None
    wanted = list(specs)
    for spec in wanted:
        present = existing.get(spec.name)
        if present is not None and len(present.partitions) != spec.partitions:
            raise BankguardError(
                f"topic {spec.name} has {len(present.partitions)} partitions, "
                f"configured {spec.partitions}; recreate it or change the setting"
            )
    missing = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=settings.topics.replication_factor,
            config={"cleanup.policy": "compact"} if spec.compacted else {},
        )
        for spec in wanted
        if spec.name not in existing
    ]
    if not missing:
        return []
    for name, future in admin.create_topics(missing, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != exc.args[0].TOPIC_ALREADY_EXISTS:
                raise BankguardError(f"cannot create topic {name}: {exc.args[0].str()}") from None
    return [topic.topic for topic in missing]


def produce(producer: Producer, topic: str, value: bytes | None, key: bytes | None, timestamp_ms: int | None = None,
            *, partition: int | None = None, headers: Headers | None = None,
            on_delivery: Callable[[KafkaError | None, Message], None] | None = None) -> None:
    """``producer.produce`` that waits for room instead of failing when the local queue is full."""
    extra: dict = {}
    if on_delivery is not None:
        extra["on_delivery"] = on_delivery
    if partition is not None:
        extra["partition"] = partition
    if headers:
        extra["headers"] = headers
    while True:
        try:
            producer.produce(topic, value, key, timestamp=timestamp_ms or 0, **extra)
            return
        except BufferError:
            producer.poll(0.05)
