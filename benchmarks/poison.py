"""Poison input through the real broker and worker: every malformed message dead-lettered,
every good event around them scored, the same alerts as a clean run.

``poison_corpus(n, seed)`` builds malformed messages of many kinds, each with the reason the
worker must give it. ``main`` sends the same generated good traffic twice, to fresh topics:
once alone (the clean run), once with the corpus mixed in at random positions, each
scored by its own worker process. It prints JSON: ``malformed_sent``, ``dlq_records`` (by
reason), good events scored, the alert ids of the poisoned run against the clean run's,
whether the worker's committed offsets reached the end of its input, and
``worker_restarts`` (agent crashes in the log, or the process gone).

    python benchmarks/poison.py [--malformed 10000] [--good 30000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, client_config, ensure_topics, produce, producer_config
from bankguard.monitoring import scrape_totals
from bankguard.processes import ManagedProcess
from bankguard.producers.scenarios import generator_class
from bankguard.scenarios import SCENARIOS
from bankguard.settings import KafkaSettings, ModelSettings, Settings, TopicSettings, WorkerSettings
from bankguard.stack import spawn_worker
from bankguard.stream_agents.dead_letters import DeadLetter
from bankguard.topics import Topics

START_MS = 1_790_000_000_000
HOUR_MS = 3_600_000
HUGE_BYTES = 1_200_000  # over librdkafka's 1 MB record limit: the worker cannot dead-letter it whole
SEND_MAX_BYTES = 4_000_000  # the poison producer's own limit, so a huge value reaches the topic


class Poison(NamedTuple):
    """One malformed message for a scenario topic and the reason the worker must give it."""

    kind: str
    reason: str
    scenario: str
    key: bytes
    value: bytes | None  # None: a tombstone


TEMPLATE = {  # a valid credit_card event, broken one way per kind
    "schema_version": 1, "event_id": "poison", "scenario": "credit_card", "entity_id": "POISON-0",
    "event_time": "2026-11-01T10:00:00.000Z", "amount": 120.5, "currency": "CNY",
    "transaction_type": "purchase", "device_type": "mobile", "device_id": "D-0000001",
    "merchant_category": "5411", "country": "CN", "ip_address": "1.2.3.4", "counterparty": "M-000001",
}


def _with(**fields: object) -> Callable[[dict], bytes]:
    return lambda event: orjson.dumps(event | fields)


def _replacing(old: bytes, new: bytes) -> Callable[[dict], bytes]:
    def build(event: dict) -> bytes:
        raw = orjson.dumps(event)
        assert old in raw, (old, raw)
        return raw.replace(old, new, 1)
    return build


def _without(name: str) -> Callable[[dict], bytes]:
    return lambda event: orjson.dumps({key: value for key, value in event.items() if key != name})


# kind -> (reason, how to break the template); the amount 120.5 and the time are the targets.
KINDS: dict[str, tuple[str, Callable[[dict], bytes | None]]] = {
    "nan": ("non_finite", _replacing(b"120.5", b"NaN")),
    "infinity": ("non_finite", _replacing(b"120.5", b"-Infinity")),
    "integer_400_digits": ("out_of_range", _replacing(b"120.5", b"9" * 400)),
    "amount_1e308": ("out_of_range", _replacing(b"120.5", b"1e308")),
    "integer_beyond_int64": ("out_of_range", _replacing(b"120.5", b"18446744073709551615")),
    "year_0001": ("out_of_range", _replacing(b'"2026-11-01', b'"0001-11-01')),
    "year_9999": ("out_of_range", _replacing(b'"2026-11-01', b'"9999-11-01')),
    "duplicate_key": ("duplicate_key", lambda event: orjson.dumps(event)[:-1] + b',"entity_id":"CARD-0000001"}'),
    "value_over_1mb": ("oversized", _with(memo="x" * HUGE_BYTES)),
    "record_over_32kib": ("oversized", _with(counterparty="y" * 40_000)),
    "text_over_1024": ("oversized", _with(memo="z" * 2_000)),
    "bad_utf8": ("bad_encoding", _replacing(b"M-000001", b"M-\xff\xfe\xfd")),
    "wrong_type": ("schema_violation", _with(amount="120.5")),
    "number_as_text": ("schema_violation", _with(country=1)),
    "missing_field": ("schema_violation", _without("entity_id")),
    "unknown_field": ("schema_violation", _with(surprise=1)),
    "not_json": ("malformed_json", lambda event: b"<event>" + orjson.dumps(event) + b"</event>"),
    "truncated_json": ("malformed_json", lambda event: orjson.dumps(event)[:40]),
    "tombstone": ("malformed_json", lambda event: None),
    "json_array": ("schema_violation", lambda event: orjson.dumps([event])),
    "json_scalar": ("schema_violation", lambda event: b"42"),
    "wrong_scenario": ("wrong_scenario", _with(scenario="aml_kyc")),
}
RARE = {"value_over_1mb"}  # each is a megabyte through the broker: one in a thousand at most


def poison_corpus(n: int, seed: int) -> list[Poison]:
    """``n`` malformed credit_card messages, every kind at least once (``n`` allowing), in a
    seeded random order; each keyed by an entity of its own so no good entity is touched."""
    rng = random.Random(seed)
    common = [kind for kind in KINDS if kind not in RARE]
    rare_count = max(1, n // 1_000) if n >= len(KINDS) else 0
    kinds = [kind for kind in RARE for _ in range(rare_count)]
    kinds += [common[i % len(common)] for i in range(n - len(kinds))]
    rng.shuffle(kinds)
    corpus = []
    for i, kind in enumerate(kinds):
        reason, build = KINDS[kind]
        key = f"POISON-{seed}-{i}"
        corpus.append(Poison(kind, reason, "credit_card", key.encode(),
                             build(TEMPLATE | {"event_id": f"poison-{seed}-{i}", "entity_id": key})))
    return corpus


class Good(NamedTuple):
    scenario: str
    key: bytes
    value: bytes
    timestamp_ms: int


def good_traffic(n: int, seed: int) -> list[Good]:
    """``n`` generated events over the nine scenarios, in event-time order."""
    per_scenario, hours = max(1, n // len(SCENARIOS)), 24
    events: list[Good] = []
    for scenario in SCENARIOS:
        generator = generator_class(scenario)(seed=seed, n_entities=500)
        rows = [row for hour in range(hours) for row in generator.generate(
            START_MS + hour * HOUR_MS, START_MS + (hour + 1) * HOUR_MS, per_scenario // hours)]
        events += [Good(scenario, row.key.encode(), orjson.dumps(row.event), row.timestamp_ms) for row in rows]
    events.sort(key=lambda good: good.timestamp_ms)
    return events[:n]


def send(settings: Settings, good: list[Good], corpus: list[Poison], seed: int) -> None:
    """The good events in order, the poison at seeded random places between them."""
    topics = Topics(settings.topics.prefix)
    slots = sorted(random.Random(seed).choices(range(len(good) + 1), k=len(corpus)))
    producer = Producer(producer_config(settings, **{"message.max.bytes": SEND_MAX_BYTES}))
    poison = iter(zip(slots, corpus, strict=True))
    upcoming = next(poison, None)
    for index in range(len(good) + 1):
        while upcoming is not None and upcoming[0] == index:
            bad = upcoming[1]
            produce(producer, topics.scenario(bad.scenario), bad.value, bad.key)
            upcoming = next(poison, None)
        if index < len(good):
            event = good[index]
            produce(producer, topics.scenario(event.scenario), event.value, event.key, event.timestamp_ms)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("the broker did not acknowledge every sent message")


def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = Consumer(client_config(settings.kafka) | {"group.id": "poison-bench-reader"})
    try:
        return {TopicPartition(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in topics for p in range(settings.topics.partitions if not t.endswith(".dlq") else 1)}
    finally:
        consumer.close()


def committed(settings: Settings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The worker group's committed offsets (read without joining the group)."""
    consumer = Consumer(client_config(settings.kafka) | {"group.id": Topics(settings.topics.prefix).worker_group})
    try:
        return {TopicPartition(tp.topic, tp.partition): tp.offset
                for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def read_all(settings: Settings, topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every record (value, headers) now on ``topic``, up to its end offsets."""
    ends = end_offsets(settings, [topic])
    consumer = Consumer(client_config(settings.kafka) | {
        "group.id": "poison-bench-reader", "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in ends])
    out: list[tuple[bytes | None, dict[str, bytes]]] = []
    left = sum(ends.values())
    try:
        while left > 0:
            for message in consumer.consume(1_000, 1.0):
                if message.error() is None:
                    out.append((message.value(), dict(message.headers() or [])))
                    left -= 1
    finally:
        consumer.close()
    return out


def worker_restarts(process: ManagedProcess) -> int:
    """Agent crashes Faust logged (each restarts the agent over its input), plus a dead process."""
    log = process.log_path.read_text(errors="replace")
    return log.count("Crashed reason=") + (0 if process.alive() else 1)


def run(settings: Settings, good: list[Good], corpus: list[Poison], seed: int, log: Path,
        timeout_s: float) -> dict:
    """Send, score with one worker until every message is accounted for, and report."""
    ensure_topics(settings, bankguard_topics(settings))
    topics = Topics(settings.topics.prefix)
    send(settings, good, corpus, seed)
    worker, url = spawn_worker(settings, log, loglevel="warning")
    inputs = end_offsets(settings, [topics.scenario(s) for s in SCENARIOS])
    deadline = time.monotonic() + timeout_s
    scored = rejected = 0
    try:
        while time.monotonic() < deadline and worker.alive():
            scored = int(sum(scrape_totals(url, "bankguard_events", "scenario").values()))
            rejected = int(sum(scrape_totals(url, "bankguard_events_rejected", "reason").values()))
            done = committed(settings, list(inputs))
            if scored >= len(good) and rejected >= len(corpus) and all(
                    done[tp] >= end for tp, end in inputs.items() if end):
                break
            time.sleep(1.0)
        restarts = worker_restarts(worker)
        done = committed(settings, list(inputs))
    finally:
        worker.stop()
    letters = read_all(settings, topics.dlq)
    alerts = {orjson.loads(value)["alert_id"] for value, _ in read_all(settings, topics.alerts) if value}
    return {
        "good_sent": len(good), "good_scored": scored, "malformed_sent": len(corpus),
        "dlq_records": len(letters),
        "dlq_by_reason": dict(Counter(DeadLetter.from_headers(headers).reason for _, headers in letters)),
        "dlq_truncated": sum(1 for _, headers in letters if headers.get("bankguard.dlq.truncated") == b"true"),
        "commits_reached_end": all(done[tp] >= end for tp, end in inputs.items() if end),
        "worker_restarts": restarts, "alert_ids": alerts,
    }


def settings_for(broker: EmbeddedBroker, work: Path, name: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
        topics=TopicSettings(prefix=f"{name}{uuid.uuid4().hex[:6]}", partitions=6),
        worker=WorkerSettings(web_port=free_port(), data_dir=work / name),
        models=ModelSettings(enabled=False),
        run_dir=work / name / "run",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--malformed", type=int, default=10_000)
    parser.add_argument("--good", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900.0, help="Seconds each run may take.")
    args = parser.parse_args()
    if args.malformed < 0 or args.good < 1 or args.timeout <= 0:
        parser.error("--malformed must be >= 0, --good >= 1, --timeout > 0")
    good = good_traffic(args.good, args.seed)
    corpus = poison_corpus(args.malformed, args.seed)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "b.log") as broker:
        work = Path(tmp)
        clean = run(settings_for(broker, work, "clean"), good, [], args.seed, work / "clean.log", args.timeout)
        poisoned = run(settings_for(broker, work, "poison"), good, corpus, args.seed, work / "poison.log",
                       args.timeout)
    expected = Counter(poison.reason for poison in corpus)
    clean_ids, poisoned_ids = clean.pop("alert_ids"), poisoned.pop("alert_ids")
    report = {
        **poisoned,
        "malformed_by_reason": dict(expected),
        "malformed_kinds": len({poison.kind for poison in corpus}),
        "dlq_matches_malformed": poisoned["dlq_records"] == len(corpus) and poisoned["dlq_by_reason"] == expected,
        "alerts": len(poisoned_ids), "clean_alerts": len(clean_ids),
        "missing_alert_ids": len(clean_ids - poisoned_ids), "extra_alert_ids": len(poisoned_ids - clean_ids),
        "clean_good_scored": clean["good_scored"], "clean_worker_restarts": clean["worker_restarts"],
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
