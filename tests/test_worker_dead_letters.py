"""The worker through the real broker: valid events counted, bad ones dead-lettered, no stop."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import orjson
import pytest
from confluent_kafka import Producer

from bankguard.kafka import producer_config
from bankguard.settings import Settings
from bankguard.stream_agents.dead_letters import HEADER_PREFIX, KEPT_BYTES, DeadLetter
from bankguard.topics import Topics
from conftest import RunningWorker
from kafka_helpers import read_topic, scenario_ends, wait_committed
from scoring_helpers import event, send, worker_alerts
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


def committed_offsets_reach_the_end(settings: Settings, worker: RunningWorker) -> None:
    """Wait until the worker group has committed every scenario partition up to its end."""
    wait_committed(settings, scenario_ends(settings), timeout_s=90, check=worker.assert_alive)


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
    alerts = worker_alerts(settings, worker)
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
