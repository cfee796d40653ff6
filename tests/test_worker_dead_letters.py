"""The worker through the real broker: valid events counted, bad ones dead-lettered, no stop."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from bankguard.kafka import client_config, producer_config
from bankguard.scenarios import SCENARIOS
from bankguard.settings import Settings
from bankguard.stream_agents.dead_letters import HEADER_PREFIX, KEPT_BYTES, DeadLetter
from bankguard.topics import Topics
from kafka_helpers import read_topic
from scoring_helpers import alerts_after, event, send
from test_poison_scoring import incoming, poison, scored

pytestmark = pytest.mark.broker

VALID = {
    "schema_version": 1, "event_id": "cc-test-1", "scenario": "credit_card",
    "entity_id": "CARD-0000001", "event_time": "2026-11-01T10:00:00.000Z", "amount": 120.5,
    "currency": "CNY", "transaction_type": "purchase", "device_type": "mobile",
    "device_id": "D-0000001", "merchant_category": "5411", "country": "CN",
    "ip_address": "1.2.3.4", "counterparty": "M-000001",
}


def test_malformed_and_invalid_events_go_to_the_dlq_and_the_worker_keeps_running(settings, worker):
    topics = Topics(settings.topics.prefix)
    source = topics.scenario("credit_card")
    malformed = b'{"event_id": "broken", "amount": '
    invalid = orjson.dumps(VALID | {"event_id": "cc-test-2", "amount": -5, "country": "China"})
    producer = Producer(producer_config(settings))
    producer.produce(source, orjson.dumps(VALID), b"CARD-0000001")
    producer.produce(source, malformed, b"CARD-0000002")
    producer.produce(source, invalid, b"CARD-0000003")
    producer.flush(10)

    letters = read_topic(settings, topics.dlq, expected=2)
    by_reason = {DeadLetter.from_headers(r.headers).reason: r for r in letters}
    assert set(by_reason) == {"malformed_json", "schema_violation"}
    assert by_reason["malformed_json"].value == malformed  # original bytes, untouched
    assert by_reason["malformed_json"].key == b"CARD-0000002"
    schema = DeadLetter.from_headers(by_reason["schema_violation"].headers)
    assert by_reason["schema_violation"].value == invalid
    assert "amount" in schema.detail and "country" in schema.detail
    assert schema.topic == source and schema.partition >= 0 and schema.offset >= 0

    # Still alive and still counting: valid events after the bad ones are processed.
    producer.produce(source, orjson.dumps(VALID | {"event_id": "cc-test-3"}), b"CARD-0000001")
    producer.flush(10)
    counted = worker.wait_for("bankguard_events", lambda t: t.get("credit_card", 0) >= 2)
    assert counted["credit_card"] == 2
    rejected = worker.totals("bankguard_events_rejected", "reason")
    assert rejected == {"malformed_json": 1.0, "schema_violation": 1.0}


def test_wrong_scenario_on_a_topic_is_rejected(settings, worker):
    topics = Topics(settings.topics.prefix)
    producer = Producer(producer_config(settings))
    producer.produce(topics.scenario("aml_kyc"), orjson.dumps(VALID), b"CARD-0000001")
    producer.flush(10)
    [letter] = read_topic(settings, topics.dlq, expected=1)
    assert DeadLetter.from_headers(letter.headers).reason == "wrong_scenario"
    assert worker.totals("bankguard_events").get("aml_kyc", 0) == 0


def committed_offsets_reach_the_end(settings: Settings, worker, timeout_s: float = 90.0) -> None:
    """Wait until the worker group has committed every scenario partition up to its end."""
    topics = Topics(settings.topics.prefix)
    partitions = [TopicPartition(topics.scenario(s), p) for s in SCENARIOS for p in range(settings.topics.partitions)]
    reader = Consumer(client_config(settings.kafka) | {"group.id": topics.worker_group})
    try:
        ends = {(tp.topic, tp.partition): reader.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        deadline = time.monotonic() + timeout_s
        behind: dict = {}
        while time.monotonic() < deadline:
            assert worker.process.alive(), worker.process.log_path.read_text()[-3000:]
            done = {(tp.topic, tp.partition): tp.offset for tp in reader.committed(partitions, timeout=10)}
            behind = {tp: (done[tp], end) for tp, end in ends.items() if end and done[tp] < end}  # -1001: none
            if not behind:
                return
            time.sleep(0.5)
        raise AssertionError(f"commits stalled (committed, end): {behind}")
    finally:
        reader.close()


def test_a_mixed_poison_batch_is_dead_lettered_and_the_good_events_around_it_scored(settings, worker):
    """Every kind, a value over 1 MB among them, between good events in the same batches."""
    topics = Topics(settings.topics.prefix)
    corpus = poison.poison_corpus(len(poison.KINDS), seed=5)
    good = [event("aml_kyc", f"CUS-{i % 5}", timedelta(minutes=i), memo="赌资" if i % 4 == 0 else "餐饮")
            for i in range(40)]
    producer = Producer(producer_config(settings, **{"message.max.bytes": poison.SEND_MAX_BYTES}))
    for i, e in enumerate(good):
        producer.produce(topics.scenario("aml_kyc"), orjson.dumps(e), e["entity_id"].encode())
        if i < len(corpus):
            bad = corpus[i]
            producer.produce(topics.scenario(bad.scenario), bad.value, bad.key)
    assert producer.flush(30) == 0

    letters = read_topic(settings, topics.dlq, expected=len(corpus), timeout_s=90)
    by_key = {letter.key: letter for letter in letters}
    assert len(letters) == len(corpus) and set(by_key) == {bad.key for bad in corpus}
    for bad in corpus:
        letter = by_key[bad.key]
        assert DeadLetter.from_headers(letter.headers).reason == bad.reason, bad.kind
        if bad.kind == "value_over_1mb":  # too large to send whole: a truncated copy, matched by hash
            assert letter.value == bad.value[:KEPT_BYTES]
            assert letter.headers[HEADER_PREFIX + "truncated"] == b"true"
            assert letter.headers[HEADER_PREFIX + "sha256"] == hashlib.sha256(bad.value).hexdigest().encode()
            assert int(letter.headers[HEADER_PREFIX + "original_size"]) == len(bad.value) + len(bad.key)
        else:
            assert letter.value == (bad.value or b""), bad.kind  # the original bytes
    alerts = alerts_after(settings, worker, good)
    clean, _ = scored(incoming(good))  # the same good events alone, in process
    assert {a["alert_id"] for a in alerts} == {orjson.loads(a.value)["alert_id"] for a in clean.alerts}
    assert len(alerts) >= 10  # one gambling memo in four
    assert {k: v for k, v in worker.totals("bankguard_events").items() if v} == {"aml_kyc": 40.0}
    committed_offsets_reach_the_end(settings, worker)
    assert "Crashed reason=" not in worker.process.log_path.read_text()


def test_an_oversized_record_is_refused_without_stalling_commits(settings, worker):
    """A value over 1 MB first, then good traffic: commits reach the end of every partition."""
    topics = Topics(settings.topics.prefix)
    [huge] = [p for p in poison.poison_corpus(len(poison.KINDS), seed=6) if p.kind == "value_over_1mb"]
    producer = Producer(producer_config(settings, **{"message.max.bytes": poison.SEND_MAX_BYTES}))
    producer.produce(topics.scenario(huge.scenario), huge.value, huge.key)
    assert producer.flush(30) == 0
    good = [event("credit_card", f"CARD-{i}", timedelta(minutes=i)) for i in range(30)]
    send(settings, good)
    [letter] = read_topic(settings, topics.dlq, expected=1, timeout_s=60)
    assert DeadLetter.from_headers(letter.headers).reason == "oversized" and len(letter.value) == KEPT_BYTES
    worker.wait_for("bankguard_events", lambda t: t.get("credit_card", 0) >= len(good))
    committed_offsets_reach_the_end(settings, worker)
    more = [event("credit_card", f"CARD-{i}", timedelta(hours=1, minutes=i)) for i in range(30)]
    send(settings, more)  # and it keeps committing after
    worker.wait_for("bankguard_events", lambda t: t.get("credit_card", 0) >= len(good) + len(more))
    committed_offsets_reach_the_end(settings, worker)
