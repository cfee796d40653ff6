"""The worker through the real broker: valid events counted, bad ones dead-lettered, no stop."""

from __future__ import annotations

import orjson
from confluent_kafka import Producer

from bankguard.kafka import producer_config
from bankguard.stream_agents.dead_letters import DeadLetter
from bankguard.topics import Topics
from kafka_helpers import read_topic

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
    assert DeadLetter.from_headers(letter.headers).reason == "schema_violation"
    assert worker.totals("bankguard_events").get("aml_kyc", 0) == 0
