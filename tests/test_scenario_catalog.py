"""Properties every scenario generator must have, whatever its patterns: run here once for
all scenarios of the registry (the per-scenario files test only their own patterns)."""

from __future__ import annotations

from functools import cache

import pytest

from bankguard.producers.scenarios import generator_class
from bankguard.producers.scenarios.base import Emitted, FakerPools
from bankguard.scenarios import SCENARIOS, parse_scenarios
from scenario_traffic import START_MS, HOUR



@cache
def pools() -> FakerPools:
    """Faker's strings, drawn once for the session (the slow part of a generator's start)."""
    return FakerPools(1, size=400)


def generate(scenario: str, seed: int, hours: int, per_hour: int) -> list[Emitted]:
    gen = generator_class(scenario)(seed=seed, n_entities=1_000, pools=pools())
    rows = []
    for h in range(hours):
        rows += gen.generate(START_MS + h * HOUR, START_MS + (h + 1) * HOUR, per_hour)
    return rows


@cache
def traffic(scenario: str) -> list[Emitted]:
    """Two days, so that episodes spread over days (loan stacking) reach steady state."""
    return generate(scenario, 3, hours=48, per_hour=500)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_generator_is_deterministic_under_its_seed(scenario):
    assert generate(scenario, 5, hours=2, per_hour=1_000) == generate(scenario, 5, hours=2, per_hour=1_000)
    assert generate(scenario, 5, hours=2, per_hour=1_000) != generate(scenario, 6, hours=2, per_hour=1_000)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_risk_is_rare_and_present_and_truth_stays_out_of_events(scenario):
    rows = traffic(scenario)
    positives = [row for row in rows if row.pattern]
    rate = len(positives) / len(rows)
    assert 0.001 < rate < 0.10, f"{scenario}: pattern rate {rate:.4f}"
    gen = generator_class(scenario)(seed=3, n_entities=10, pools=pools())
    assert {row.pattern for row in positives} <= set(gen.pattern_names)
    for row in rows[:2_000]:
        assert not {"pattern", "label", "is_fraud", "truth"} & set(row.event)
        assert row.event["scenario"] == scenario and row.key == row.event["entity_id"]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_events_come_in_time_order_with_unique_ids(scenario):
    rows = traffic(scenario)
    times = [row.timestamp_ms for row in rows]
    assert times == sorted(times)
    ids = [row.event["event_id"] for row in rows]
    assert len(set(ids)) == len(ids)


def test_scenario_lists_are_parsed_and_unknown_ones_named():
    assert parse_scenarios("all") == list(SCENARIOS)
    assert parse_scenarios("aml_kyc, credit_card") == ["aml_kyc", "credit_card"]
    with pytest.raises(ValueError, match="bogus"):
        parse_scenarios("credit_card,bogus")
