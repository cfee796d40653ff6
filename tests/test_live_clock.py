"""Live traffic's two clocks: the wall rate the pipeline carries, and event time at the
models' density; latency is measured from the producer's send time."""

from __future__ import annotations

import orjson
import pytest

from bankguard.kafka import PRODUCED_MS_HEADER, arrival_ms
from bankguard.rules.config import load_rules
from bankguard.stack import LiveClock
from bankguard.stream_agents.scoring import Incoming, StreamScorer
from bankguard.stream_agents.state import StateStore


def test_event_time_runs_so_each_entity_sees_the_trained_density():
    clock = LiveClock.for_density(450.0, 9, 5_000, 1.3)
    per_entity_per_simulated_day = (clock.wall_rate / 9 / 5_000) * 86_400 / clock.speed
    assert per_entity_per_simulated_day == pytest.approx(1.3)
    assert clock.event_rate * clock.speed == pytest.approx(450.0)


@pytest.mark.parametrize(("headers", "expected"), [
    ([(PRODUCED_MS_HEADER, b"1790000000123")], 1_790_000_000_123),
    ({PRODUCED_MS_HEADER: b"1790000000123"}, 1_790_000_000_123),
    ([("other", b"1"), (PRODUCED_MS_HEADER, "42")], 42),
    ([(PRODUCED_MS_HEADER, b"soon")], None), (None, None), ([], None),
])
def test_the_send_time_is_read_from_the_header(headers, expected):
    assert arrival_ms(headers) == expected


def test_latency_counts_from_arrival_when_the_producer_stamped_it():
    event = {"schema_version": 1, "event_id": "e1", "scenario": "credit_card", "entity_id": "C-1",
             "event_time": "2030-01-01T00:00:00Z", "amount": 12.0, "counterparty": "T-1"}
    rules = load_rules()
    scorer = StreamScorer(StateStore({}), lambda: rules)
    stamped = Incoming("credit_card", "t", 0, 0, b"C-1", orjson.dumps(event), None, arrived_ms=1_790_000_000_000)
    plain = Incoming("credit_card", "t", 0, 1, b"C-2", orjson.dumps(event | {"entity_id": "C-2"}), None)
    scored = scorer.score([stamped, plain])
    assert scored.arrivals_ms["credit_card"] == [1_790_000_000_000, 1_893_456_000_000]  # else its event time
