"""The outcomes feed in process: the schema, the investigations desk, point-in-time visibility."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from bankguard.errors import BankguardError
from bankguard.events import ms_time
from bankguard.outcomes import (
    OUTCOME_SCHEMA_PATH,
    Outcome,
    OutcomeLog,
    parse_outcome,
    read_outcomes_file,
    render_outcome_schema,
)
from bankguard.producers.investigations import desk_outcomes, outcomes_path, seen_alert, seen_fraud
from bankguard.settings import InvestigationSettings
from outcome_helpers import DAY_MS, T0, desk_inputs, outcome_validator

CONFIG = InvestigationSettings(capacity_per_day=5, below_line_sample_per_day=3, seed=11)


def run_desk(alerts: list[dict], truth: list[dict], config: InvestigationSettings = CONFIG) -> list[Outcome]:
    return desk_outcomes(config, [seen_alert(a) for a in alerts],
                         [f for t in truth if (f := seen_fraud(t)) is not None])


def outcome(**fields: object) -> dict:
    record: dict = {"event_id": "e1", "alert_id": None, "entity_id": "CARD-1", "counterparty": "M-1",
                    "scenario": "credit_card", "label": "fraud", "source": "chargeback",
                    "decided_at": "2026-03-02T00:00:00Z", "event_time": "2026-03-01T12:00:00Z"}
    return record | fields


# --- the schema ------------------------------------------------------------------------------


def test_committed_schema_matches_the_model():
    assert OUTCOME_SCHEMA_PATH.read_text() == render_outcome_schema(), "stale: run `bankguard schemas export`"


def test_desk_outcomes_validate_against_the_committed_schema():
    outcomes = run_desk(*desk_inputs())
    validator = outcome_validator()
    assert outcomes
    for item in outcomes:
        validator.validate(orjson.loads(orjson.dumps(item.record())))
        assert Outcome.model_validate(item.record()) == item


@pytest.mark.parametrize(("fields", "needle", "schema_refuses"), [
    ({"label": "suspicious"}, "label", True),
    ({"source": "rumour"}, "source", True),
    ({"scenario": "lottery"}, "scenario", True),
    ({"comment": "x"}, "comment", True),
    ({"event_id": ""}, "event_id", True),
    # A time without an offset breaks the schema's date-time format (for validators that check
    # formats); an order between two fields is the model's check alone.
    ({"decided_at": "2026-03-02T00:00:00"}, "decided_at", True),
    ({"decided_at": "2026-03-01T11:59:59Z"}, "decided_at is before event_time", False),
])
def test_invalid_outcomes_are_refused_in_the_schema_and_the_model(fields, needle, schema_refuses):
    record = outcome(**fields)
    assert outcome_validator().is_valid(record) is not schema_refuses
    with pytest.raises(BankguardError, match=needle) as refused:
        parse_outcome(record, "somewhere")
    assert "\n" not in str(refused.value)


# --- the desk --------------------------------------------------------------------------------


def test_the_desk_is_deterministic_whatever_the_arrival_order():
    alerts, truth = desk_inputs()
    first = run_desk(alerts, truth)
    shuffled_alerts, shuffled_truth = alerts[:], truth[:]
    random.Random(5).shuffle(shuffled_alerts)
    random.Random(6).shuffle(shuffled_truth)
    assert run_desk(shuffled_alerts, shuffled_truth) == first
    reseeded = run_desk(alerts, truth, CONFIG.model_copy(update={"seed": 12}))
    assert [o.decided_at for o in reseeded] != [o.decided_at for o in first]


def test_investigators_work_the_k_riskiest_entities_and_a_weighted_sample_below_the_line():
    alerts, truth = desk_inputs()
    outcomes = run_desk(alerts, truth)
    worked: dict[tuple[str, int], dict[str, float]] = {}  # (scenario, day) -> entity -> sampling weight
    for item in outcomes:
        if item.source == "investigation":
            worked.setdefault((item.scenario, item.event_ms // DAY_MS), {})[item.entity_id] = item.sampling_weight
    risk: dict[tuple[str, int], dict[str, float]] = {}
    for alert in map(seen_alert, alerts):
        day = risk.setdefault((alert.scenario, alert.event_ms // DAY_MS), {})
        day[alert.entity_id] = max(day.get(alert.entity_id, 0.0), alert.score)
    assert set(worked) == set(risk) and len(risk) == 6  # two scenarios, three days
    for key, scores in risk.items():
        ranked = sorted(scores, key=lambda entity: (-scores[entity], entity))
        top, below = set(ranked[:CONFIG.capacity_per_day]), set(ranked[CONFIG.capacity_per_day:])
        assert {entity for entity, weight in worked[key].items() if weight == 1.0} == top, key
        sampled = {entity: weight for entity, weight in worked[key].items() if entity not in top}
        assert len(sampled) == min(CONFIG.below_line_sample_per_day, len(below)) > 0 and set(sampled) <= below
        assert set(sampled.values()) == {len(below) / len(sampled)}, "each stands for its share of the rest"
    no_sample = run_desk(alerts, truth, CONFIG.model_copy(update={"below_line_sample_per_day": 0}))
    assert {o.sampling_weight for o in no_sample} == {1.0}
    alerted = {(a["scenario"], a["event_id"]) for a in alerts}
    frauds = {(t["scenario"], t["event_id"]) for t in truth}
    for item in outcomes:
        key = (item.scenario, item.event_id)
        assert (item.label == "fraud") == (key in frauds)
        assert (item.alert_id is not None) == (key in alerted)
        if item.source == "investigation" and item.alert_id is None:
            assert item.label == "fraud"  # found on reviewing the entity's day, without an alert
    assert Counter(o.source for o in outcomes)["investigation"] > 0
    capacity_zero = run_desk(alerts, truth, CONFIG.model_copy(update={"capacity_per_day": 0,
                                                                      "below_line_sample_per_day": 0}))
    assert {o.source for o in capacity_zero} == {"chargeback"}


def test_decisions_come_after_the_configured_delays():
    alerts, truth = desk_inputs()
    config = CONFIG.model_copy(update={"delay_min_days": 1.0, "delay_max_days": 2.0,
                                       "chargeback_min_days": 5.0, "chargeback_max_days": 30.0})
    outcomes = run_desk(alerts, truth, config)
    for item in outcomes:
        if item.source == "investigation":
            day_end = (item.event_ms // DAY_MS + 1) * DAY_MS
            assert day_end + DAY_MS <= item.decided_ms <= day_end + 2 * DAY_MS
        else:
            assert item.event_ms + 5 * DAY_MS <= item.decided_ms <= item.event_ms + 30 * DAY_MS
    # All the outcomes of one worked entity and day are decided together, the case closed at once.
    closed: dict[tuple[str, str, int], set[int]] = {}
    for item in outcomes:
        if item.source == "investigation":
            closed.setdefault((item.scenario, item.entity_id, item.event_ms // DAY_MS), set()).add(item.decided_ms)
    assert all(len(times) == 1 for times in closed.values())


def test_customers_report_most_missed_frauds_and_never_a_legitimate_event():
    alerts, truth = desk_inputs(events_per_day=1_500, entities=400)
    outcomes = run_desk(alerts, truth, CONFIG.model_copy(update={"chargeback_share": 0.8}))
    investigated = {o.event_id for o in outcomes if o.source == "investigation"}
    missed = [t for t in truth if t["event_id"] not in investigated]
    chargebacks = [o for o in outcomes if o.source == "chargeback"]
    assert all(o.label == "fraud" for o in chargebacks)
    assert 0.75 < len(chargebacks) / len(missed) < 0.85, "some missed frauds are never reported"
    unreported = run_desk(alerts, truth, CONFIG.model_copy(update={"chargeback_share": 0.0}))
    assert unreported and {o.source for o in unreported} == {"investigation"}
    everything = run_desk(alerts, truth, CONFIG.model_copy(update={"chargeback_share": 1.0}))
    assert sum(o.label == "fraud" for o in everything) == len(truth), "every fraud ends up known"


def test_the_desk_closes_days_by_its_clock_and_releases_by_decision_time():
    from bankguard.producers.investigations import InvestigationsDesk

    alerts, truth = desk_inputs()
    everything = run_desk(alerts, truth)
    desk = InvestigationsDesk(CONFIG)
    for alert in alerts:
        desk.add_alert(seen_alert(alert))
    for record in truth:
        desk.add_fraud(seen_fraud(record))  # type: ignore[arg-type]
    clock = T0 + 5 * DAY_MS
    desk.close_through(clock)
    released = desk.release(clock)
    assert released == [o for o in everything if o.decided_ms <= clock] and released
    desk.add_alert(seen_alert(alerts[0]))  # a day already worked: nobody takes it any more
    assert desk.late_alerts == 1
    assert released + desk.release(2**62) == everything


# --- known at time t ---------------------------------------------------------------------------


def test_an_outcome_decided_after_an_event_is_never_visible_at_its_time():
    event_ms = T0 + 12 * 3_600_000
    planted = Outcome.model_validate(outcome(event_id="planted", event_time=ms_time(event_ms - 60_000),
                                             decided_at=ms_time(event_ms + 1)))
    earlier = Outcome.model_validate(outcome(event_id="earlier", event_time=ms_time(event_ms - DAY_MS),
                                             decided_at=ms_time(event_ms - 1)))
    at_the_instant = Outcome.model_validate(outcome(event_id="same-ms", event_time=ms_time(event_ms - 5),
                                                    decided_at=ms_time(event_ms)))
    log = OutcomeLog([planted, at_the_instant, earlier])
    assert log.known_at(event_ms) == [earlier]
    assert log.label_at("credit_card", "planted", event_ms) is None
    assert log.known_at(event_ms + 2) == [earlier, at_the_instant, planted]
    assert log.label_at("credit_card", "planted", event_ms + 2) == "fraud"
    assert log.known_at(event_ms, "insurance_claims") == []
    frame = log.frame()
    assert frame["event_id"].tolist()[:log.known_count(event_ms)] == ["earlier"]
    assert frame["decided_ms"].is_monotonic_increasing and frame["fraud"].all()


def test_a_repeated_outcome_counts_once_from_its_first_decision():
    late = Outcome.model_validate(outcome(decided_at="2026-03-20T00:00:00Z", source="investigation"))
    first = Outcome.model_validate(outcome(decided_at="2026-03-05T00:00:00Z"))
    log = OutcomeLog([late, first])
    assert list(log) == [first] and len(log) == 1


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_outcome_files_round_trip(tmp_path, suffix):
    from bankguard.event_files import RecordFileWriter
    from bankguard.outcomes import OUTCOME_ARROW_SCHEMA

    outcomes = run_desk(*desk_inputs())
    path = tmp_path / f"days.outcomes{suffix}"
    writer = RecordFileWriter(path, OUTCOME_ARROW_SCHEMA)
    for item in outcomes:
        writer.write(item.scenario, [item.record()])
    writer.close()
    assert list(read_outcomes_file(path)) == list(OutcomeLog(outcomes))


def test_a_bad_outcome_file_is_refused_naming_the_record(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(outcome()) + "\n" + json.dumps(outcome(event_id="e2", label="maybe")) + "\n")
    with pytest.raises(BankguardError, match=r"bad\.jsonl: line 2: invalid outcome: label"):
        read_outcomes_file(path)
    path.write_text("{not json\n")
    with pytest.raises(BankguardError, match=r"bad\.jsonl: line 1: not a JSON object"):
        read_outcomes_file(path)
    with pytest.raises(BankguardError, match="unknown file type"):
        read_outcomes_file(tmp_path / "outcomes.csv")


# --- produce --out and backtest --outcomes ------------------------------------------------------


def bankguard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"BANKGUARD_MODELS__ENABLED": "false"}  # rules alone: fast, and enough for the desk
    return subprocess.run([sys.executable, "-m", "bankguard", *args], capture_output=True, text=True,
                          timeout=280, env=env, cwd=cwd)


@pytest.mark.broker  # runs a `bankguard` command
def test_produce_out_writes_the_desks_outcomes_and_backtest_reads_them(tmp_path):
    days = tmp_path / "days.parquet"
    made = bankguard("produce", "--out", str(days), "--rate", "0.5", "--days", "3", "--entities", "60",
                     "--scenarios", "credit_card,atm_netbank", "--seed", "4", "--start", "2026-03-01",
                     "--no-progress", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert outcomes_path(days) == tmp_path / "days.outcomes.parquet"
    log = read_outcomes_file(outcomes_path(days))
    events = pq.read_table(days, columns=["scenario", "event_id"]).to_pylist()
    truth = {(t["scenario"], t["event_id"]) for t in pq.read_table(tmp_path / "days.truth.parquet").to_pylist()}
    produced = {(e["scenario"], e["event_id"]) for e in events}
    assert len(log) > 0 and {o.source for o in log} == {"investigation", "chargeback"}
    for item in log:
        assert (item.scenario, item.event_id) in produced
        assert (item.label == "fraud") == ((item.scenario, item.event_id) in truth)
    report = tmp_path / "report.json"
    tested = bankguard("backtest", "--source", str(days), "--truth", str(tmp_path / "days.truth.parquet"),
                       "--outcomes", str(outcomes_path(days)), "--from", "2026-03-03", "--no-models",
                       "--json", str(report), cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr
    known = json.loads(report.read_text())["outcomes"]
    assert known["records"] == len(log)
    assert known["known_at_from"] == log.known_count(T0 + 2 * DAY_MS) < known["records"]


@pytest.mark.broker  # runs a `bankguard` command
def test_backtest_refuses_a_bad_outcomes_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(outcome(decided_at="2026-02-01T00:00:00Z")) + "\n")
    result = bankguard("backtest", "--source", str(tmp_path / "none.parquet"), "--outcomes", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "line 1: invalid outcome" in result.stderr and "decided_at is before event_time" in result.stderr


@pytest.mark.broker  # runs a `bankguard` command
def test_the_desk_process_says_in_one_line_when_it_cannot_reach_kafka(tmp_path):
    from bankguard.broker import free_port

    result = subprocess.run([sys.executable, "-m", "bankguard", "investigations"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path,
                            env=os.environ | {"BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "cannot reach Kafka" in result.stderr


def test_the_desk_process_clock_waits_for_every_partition_but_not_for_an_idle_one():
    from bankguard.producers.investigations_stream import Watermark

    clock = Watermark([("alerts", 0), ("alerts", 1), ("truth", 0)])
    clock.saw(("truth", 0), T0 + 40 * DAY_MS)
    assert clock.value() is None, "alerts have not been heard from yet"
    clock.saw(("alerts", 0), T0)
    clock.at_end(("alerts", 1))  # empty so far
    assert clock.value() == T0, "the slowest partition still being read sets the clock"
    clock.at_end(("alerts", 0))
    assert clock.value() == T0 + 40 * DAY_MS, "once all caught up, the latest time seen"
    clock.saw(("alerts", 1), T0 + DAY_MS)
    assert clock.value() == T0 + DAY_MS


def test_the_desk_s_clock_waits_for_the_events_the_workers_have_not_scored():
    from bankguard.producers.investigations_stream import ScoringProgress

    progress = ScoringProgress()
    assert progress.value() is None  # nothing seen: nothing to wait for
    for offset in range(5):
        progress.saw(("tx", 0), offset, T0 + offset * DAY_MS)
    progress.saw(("tx", 1), 0, T0 + 3 * DAY_MS)
    assert progress.value() == T0, "no offset committed: the first event holds the clock"
    progress.committed({("tx", 0): 3, ("tx", 1): 0})
    assert progress.value() == T0 + 3 * DAY_MS, "the earliest unscored event of any partition"
    progress.committed({("tx", 0): 5, ("tx", 1): 1})
    assert progress.value() is None, "everything scored: the clock is free"
    progress.saw(("tx", 0), 4, T0)  # read again after a restart, already scored
    assert progress.value() is None


def test_a_worker_commit_frees_the_desk_s_clock_only_once_the_cases_written_before_it_are_read():
    from bankguard.producers.investigations_stream import CommitGate

    gate, read_to = CommitGate(), {("cases", 0): 7, ("cases", 1): 0}
    assert gate.release(read_to.__getitem__) is None, "nothing held"
    gate.hold({("tx", 0): 40}, {("cases", 0): 9, ("cases", 1): 0})
    assert gate.holding and gate.release(read_to.__getitem__) is None, "cases 7 and 8 not read yet"
    read_to[("cases", 0)] = 9
    assert gate.release(read_to.__getitem__) == {("tx", 0): 40}
    assert not gate.holding and gate.release(read_to.__getitem__) is None, "released once"
