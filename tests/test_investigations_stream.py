"""The investigations desk as a process, through the real broker: alerts and truth in, outcomes out."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from confluent_kafka import Consumer, Producer

from bankguard.broker import free_port
from bankguard.kafka import client_config, produce, producer_config
from bankguard.producers.investigations_stream import committed_offsets
from bankguard.outcomes import Outcome, OutcomeLog, read_outcomes_topic
from bankguard.processes import ManagedProcess
from bankguard.events import iso_times
from bankguard.cases import cases_of
from bankguard.events import event_time_ms
from bankguard.producers.investigations import SeenFraud, desk_outcomes, seen_case, seen_fraud
from bankguard.rules.config import CaseWeights
from bankguard.settings import Settings, settings_env
from bankguard.topics import Topics
from kafka_helpers import read_topic
from outcome_helpers import DAY_MS, T0, desk_inputs, outcome_validator

pytestmark = pytest.mark.broker


def frauds(records: list[dict]) -> list[SeenFraud]:
    return [fraud for record in records if (fraud := seen_fraud(record)) is not None]


def publish(settings: Settings, topic: str, records: list[dict]) -> None:
    """Records as the worker and the producer write them: keyed by entity, stamped with event time."""
    producer = Producer(producer_config(settings))
    for record in records:
        produce(producer, topic, orjson.dumps(record), str(record["entity_id"]).encode(),
                event_time_ms(record["event_time"]))
    assert producer.flush(30) == 0


def publish_cases(settings: Settings, cases: list[dict]) -> None:
    """Case records as the workers write them: keyed by case id, in order."""
    producer = Producer(producer_config(settings))
    for case in cases:
        produce(producer, Topics(settings.topics.prefix).cases, orjson.dumps(case), case["case_id"].encode())
    assert producer.flush(30) == 0


def clock_record(day: int) -> dict:
    """A fraud far later: it moves the desk's clock (its own chargeback is decided later still)."""
    return {"schema_version": 1, "event_id": f"clock-{day}", "scenario": "credit_card", "entity_id": "E-clock",
            "event_time": iso_times(np.array([T0 + day * DAY_MS]))[0], "label": 1, "pattern": "p",
            "counterparty": None}


def start_desk(settings: Settings, log: Path) -> ManagedProcess:
    return ManagedProcess("investigations", [sys.executable, "-m", "bankguard", "investigations"],
                          log_path=log, env=settings_env(settings)).start()


def outcomes_on_topic(settings: Settings, count: int, desk: ManagedProcess) -> list[Outcome]:
    """Wait until ``count`` outcomes are on the topic (the desk still running), each one valid."""
    records = read_topic(settings, Topics(settings.topics.prefix).outcomes, expected=count, timeout_s=120)
    assert desk.alive(), desk.log_path.read_text()[-3000:] if desk.log_path else "desk died"
    assert len(records) == count, f"{len(records)} of {count} outcomes"
    validator = outcome_validator()
    found = []
    for record in records:
        value = orjson.loads(record.value)
        validator.validate(value)
        outcome = Outcome.model_validate(value)
        assert record.timestamp_ms == outcome.decided_ms, "an outcome is on the topic from its decision on"
        assert record.key == outcome.entity_id.encode()
        found.append(outcome)
    return sorted(found, key=lambda o: (o.scenario, o.event_id))


def summary(desk: ManagedProcess) -> str:
    """What the desk printed, the line it ends with included (unwrapped)."""
    assert desk.log_path is not None
    return " ".join(desk.log_path.read_text().split())


def test_the_desk_process_reads_cases_and_truth_and_writes_the_outcomes_of_the_desk(settings, tmp_path):
    topics = Topics(settings.topics.prefix)
    config = settings.investigations
    alerts, truth = desk_inputs(seed=8)
    cases = cases_of(alerts, CaseWeights())
    # Each case as the workers send it: a version per alert it gains, the last one whole.
    versions = [case | {"alerts": case["alerts"][:n], "risk": case["risk"] * n / len(case["alerts"])}
                for case in cases for n in range(1, len(case["alerts"]) + 1)]
    publish_cases(settings, versions)
    publish(settings, topics.truth, [*truth, clock_record(40)])
    clock = T0 + 40 * DAY_MS - int(config.lateness_s * 1000)
    worked = [alert for case in cases for alert in seen_case(case)]
    everything = desk_outcomes(config, worked, frauds(truth))
    expected = [o for o in everything if o.decided_ms <= clock]
    assert 0 < len(expected) <= len(everything)

    by_event = sorted(expected, key=lambda o: (o.scenario, o.event_id))
    desk = start_desk(settings, tmp_path / "desk.log")
    try:
        assert outcomes_on_topic(settings, len(expected), desk) == by_event, \
            "the process decides exactly what the desk decides, and writes each once it is decided"
    finally:
        desk.stop()
    assert f"wrote {len(expected)} outcomes (0 already on the topic)" in summary(desk)
    # What a backtest's `--outcomes kafka` reads: the same outcomes, by decision time.
    assert list(read_outcomes_topic(settings, topics.outcomes)) == list(OutcomeLog(expected))

    # Restarted, it replays its inputs, skips what it wrote, and goes on when the clock moves.
    publish(settings, topics.truth, [clock_record(90)])
    later = [o for o in desk_outcomes(config, worked, frauds([*truth, clock_record(40)]))
             if clock < o.decided_ms <= T0 + 90 * DAY_MS - int(config.lateness_s * 1000)]
    assert later, "the first clock record's chargeback is due by the second"
    desk = start_desk(settings, tmp_path / "desk-again.log")
    try:
        both = outcomes_on_topic(settings, len(expected) + len(later), desk)
    finally:
        desk.stop()
    assert both == sorted(by_event + later, key=lambda o: (o.scenario, o.event_id))
    assert f"wrote {len(later)} outcomes ({len(expected)} already on the topic)" in summary(desk)


def test_the_desk_waits_out_a_broker_that_does_not_answer_for_the_workers_offsets(settings):
    """The desk asks for the worker group's offsets every few seconds; a broker that does not answer
    in time is an outage to wait out (the clock holds), not a reason for the desk to exit."""
    where = [(Topics(settings.topics.prefix).scenario("credit_card"), 0)]
    answering = Consumer(client_config(settings.kafka) | {"group.id": "bankguard-worker", "log_level": 0})
    gone = settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    silent = Consumer(client_config(gone) | {"group.id": "bankguard-worker", "log_level": 0})
    try:
        assert committed_offsets(answering, where) == {where[0]: 0}  # nothing committed yet
        assert committed_offsets(silent, where, timeout_s=1.0) is None
    finally:
        answering.close()
        silent.close()
