"""Producers through the real broker: every scenario lands, keyed by entity, truth apart."""

from __future__ import annotations

from collections import Counter

import orjson

from bankguard.events import parse_event
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.scenarios import SCENARIOS
from bankguard.topics import Topics
from kafka_helpers import read_topic


def test_every_scenario_is_produced_and_consumed_back(settings):
    publisher = ScenarioPublisher(settings, list(SCENARIOS), rate=1_000, seed=21, speed=0)
    report = publisher.run(max_events=45_000)
    assert report.failed == 0
    topics = Topics(settings.topics.prefix)
    truth = [orjson.loads(r.value) for r in read_topic(settings, topics.truth)]
    truth_ids = {t["event_id"] for t in truth}
    seen_ids = set()
    for scenario in SCENARIOS:
        counts = report.scenarios[scenario]
        assert counts.produced > 0
        records = read_topic(settings, topics.scenario(scenario), expected=counts.produced)
        assert len(records) == counts.produced
        for record in records:
            event = parse_event(scenario, record.value)
            assert record.key == event.entity_id.encode()
            assert record.timestamp_ms == int(event.event_time.timestamp() * 1000)
            seen_ids.add(event.event_id)
        partitions_of_entity: dict[bytes, set[int]] = {}
        for record in records:
            partitions_of_entity.setdefault(record.key, set()).add(record.partition)
        assert all(len(parts) == 1 for parts in partitions_of_entity.values())
    assert truth_ids <= seen_ids, "every truth label refers to a produced event"
    by_scenario = Counter(t["scenario"] for t in truth)
    assert sum(by_scenario.values()) == sum(c.truth for c in report.scenarios.values()) > 0
    assert all(t["label"] == 1 and t["pattern"] for t in truth)


def test_paced_run_keeps_event_time_close_to_the_wall_clock(settings):
    publisher = ScenarioPublisher(settings, ["credit_card"], rate=500, seed=4, speed=1)
    report = publisher.run(duration_s=2.0)
    produced = report.scenarios["credit_card"].produced
    assert 700 <= produced <= 1_300, produced  # ~500/s for 2 s
    records = read_topic(settings, Topics(settings.topics.prefix).scenario("credit_card"), expected=produced)
    span_s = (max(r.timestamp_ms for r in records) - min(r.timestamp_ms for r in records)) / 1000
    assert 1.0 <= span_s <= 3.0
