"""Producers through the real broker: every scenario lands, keyed by entity, truth apart."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import orjson
import pytest

from bankguard.broker import free_port
from bankguard.events import parse_event
from bankguard.producers.metrics import PublisherCollector
from bankguard.producers.publisher import PublishReport, ScenarioCounts, ScenarioPublisher
from bankguard.scenarios import SCENARIOS
from bankguard.topics import Topics
from kafka_helpers import read_topic


def test_every_scenario_is_produced_and_consumed_back(settings):
    publisher = ScenarioPublisher(settings, list(SCENARIOS), rate=1_000, seed=21, speed=0)
    report = publisher.run(max_events=45_000)
    assert report.failed == 0 and report.unacknowledged == 0 and report.delivery_problem() is None
    assert report.sent == report.produced > 0
    acknowledged = {sample.labels["scenario"]: sample.value for family in PublisherCollector(report).collect()
                    if family.name == "bankguard_producer_events" for sample in family.samples}
    assert acknowledged == {key: counts.produced for key, counts in report.scenarios.items()}
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


def _produce_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bankguard", "produce", "--no-progress", *args],
                          env=os.environ | env, capture_output=True, text=True, timeout=120)


@pytest.mark.broker  # runs a `bankguard` command
def test_produce_to_a_dead_broker_exits_non_zero_in_one_line(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    report = tmp_path / "report.json"
    result = _produce_cli({"BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": dead}, "--count", "100", "--report", str(report))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [(f"bankguard: cannot reach Kafka at {dead}: "
                                          "Failed to get metadata: Local: Broker transport failure")], result.stderr
    assert not report.exists(), "nothing half-written"


@pytest.mark.broker
def test_produce_refuses_topics_that_do_not_exist_instead_of_creating_them(settings):
    env = {"BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "BANKGUARD_TOPICS__PREFIX": "nosuchprefix"}
    result = _produce_cli(env, "--count", "100", "--scenarios", "credit_card")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        (f"bankguard: topic(s) missing on {settings.kafka.bootstrap_servers}: nosuchprefix.truth, "
        "nosuchprefix.tx.credit_card; create them with 'bankguard topics'")], result.stderr


def test_the_report_says_in_one_line_what_the_broker_did_not_acknowledge():
    report = PublishReport(1, {"credit_card": ScenarioCounts(sent=10, produced=6, failed=1),
                               "aml_kyc": ScenarioCounts(sent=5, produced=5)})
    report.errors["_MSG_TIMED_OUT"] += 1
    assert (report.sent, report.produced, report.failed, report.unacknowledged) == (15, 11, 1, 3)
    assert report.delivery_problem() == ("4 of 15 events not acknowledged by the broker "
                                         "(1 failed, 3 unacknowledged at exit; _MSG_TIMED_OUT x1)")
    summary = report.as_dict()
    assert (summary["sent"], summary["acknowledged"], summary["failed"], summary["unacknowledged"]) == (15, 11, 1, 3)
    assert summary["scenarios"]["credit_card"] == {"sent": 10, "produced": 6, "acknowledged": 6, "failed": 1,
                                                  "unacknowledged": 3, "truth": 0}
    assert PublishReport(1, {"aml_kyc": ScenarioCounts(sent=5, produced=5)}).delivery_problem() is None
