"""The committed JSON Schemas are the contract: in sync with the models, and they accept
exactly what the producers emit and reject what the worker rejects."""

from __future__ import annotations

import json

import jsonschema_rs
import orjson
import pytest

from bankguard.events import InvalidEvent, parse_event
from bankguard.scenarios import SCENARIOS
from bankguard.schema_files import render_schema, schema_path
from generated import traffic


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_committed_schema_matches_the_model(scenario):
    path = schema_path(scenario)
    assert path.read_text() == render_schema(scenario), (
        f"{path.name} is stale: run `bankguard schemas export`"
    )


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_generated_events_validate_against_the_committed_schema(scenario):
    validator = jsonschema_rs.validator_for(json.loads(schema_path(scenario).read_text()), validate_formats=True)
    rows = traffic(scenario)
    assert any(row.pattern for row in rows) and any(not row.pattern for row in rows)
    for row in rows:
        validator.validate(json.loads(orjson.dumps(row.event)))
        parse_event(scenario, orjson.dumps(row.event))
    # Formats are checked, not only shapes: a time that is not RFC 3339 is refused.
    assert not validator.is_valid(rows[0].event | {"event_time": "yesterday"})


def test_invalid_events_name_their_reason_and_fields():
    with pytest.raises(InvalidEvent) as malformed:
        parse_event("credit_card", b"{not json")
    assert malformed.value.reason == "malformed_json"
    with pytest.raises(InvalidEvent) as invalid:
        parse_event("insurance_claims", b'{"event_id": "x", "entity_id": "y", "event_time": "2026-01-01T00:00:00Z"}')
    assert invalid.value.reason == "schema_violation"
    assert "amount" in invalid.value.detail and "claim_type" in invalid.value.detail


def test_a_card_record_needs_only_card_counterparty_amount_and_time():
    """What every card data set has; a zero amount is a card verification, a negative one is refused."""
    for amount in (0.0, 12.5):
        event = parse_event("credit_card", orjson.dumps({"event_id": "t-1", "entity_id": "CARD-1", "amount": amount,
                                                         "event_time": "2026-01-01T00:00:00Z",
                                                         "counterparty": "TERM-7"}))
        assert event.amount == amount and event.device_id is None and event.transaction_type is None
    with pytest.raises(InvalidEvent, match="amount"):
        parse_event("credit_card", b'{"event_id": "t", "entity_id": "C", "amount": -1.0,'
                                   b' "event_time": "2026-01-01T00:00:00Z"}')
    with pytest.raises(InvalidEvent, match="schema_violation"):
        parse_event("cyber_security", b'{"event_id": "x", "entity_id": "y", "event_time": "2026-01-01T00:00:00",'
                    b'"threat_type": "malware", "systems_affected": 1, "severity_score": 1,'
                    b'"bytes_out": 0, "detector": "edr"}')  # naive time: no zone, rejected
