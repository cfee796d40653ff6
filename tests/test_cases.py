"""Cases: an entity's alerts of one window, grouped, with a combined risk and a stable id."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import jsonschema_rs
import orjson
import pytest

from bankguard.cases import DEFAULT_WINDOW_MS, EntityCases, alert_risk, case_headers, case_id, cases_of
from bankguard.events import event_time_ms
from bankguard.rules.config import CaseWeights, load_rules
from bankguard.schema_files import CASE_SCHEMA_PATH
from bankguard.stream_agents.scoring import Incoming, StreamScorer
from bankguard.stream_agents.state import StateStore
from generated import traffic

DAY = DEFAULT_WINDOW_MS
T0 = 20_000 * DAY


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert(number: int, entity: str, at_ms: int, detector: str, score: float, *, kind: str = "rule",
          risk: float | None = None, amount: float | None = 100.0, counterparty: str | None = "M-1") -> dict:
    return {"alert_id": f"a{number}", "event_id": f"e{number}", "scenario": "credit_card", "entity_id": entity,
            "event_time": iso(at_ms), "severity": "high", "score": score,
            "detector": {"kind": kind, "id": detector, "version": 1},
            "evidence": {} if risk is None else {"risk": risk}, "amount": amount, "currency": "EUR",
            "counterparty": counterparty}


def test_one_case_per_entity_and_window_with_every_detector_s_alerts():
    alerts = [alert(1, "C-1", T0 + 1_000, "credit_card.card_testing", 0.6),
              alert(2, "C-1", T0 + 2_000, "model:hist_gbdt", 0.97, kind="model", risk=0.8),
              alert(3, "C-1", T0 + DAY + 5, "credit_card.card_testing", 0.6),  # the next day: another case
              alert(4, "C-2", T0 + 3_000, "credit_card.card_testing", 0.6)]
    cases = {(c["entity_id"], c["window_start"]): c for c in cases_of(alerts, CaseWeights())}
    assert set(cases) == {("C-1", iso(T0)), ("C-1", iso(T0 + DAY)), ("C-2", iso(T0))}
    first = cases["C-1", iso(T0)]
    assert [a["alert_id"] for a in first["alerts"]] == ["a1", "a2"] and first["alert_count"] == 2
    assert first["detectors"] == {"credit_card.card_testing": 0.6, "model:hist_gbdt": 0.8}  # a model's calibrated risk
    assert first["risk"] == pytest.approx(1 - (1 - 0.6) * (1 - 0.8))
    assert first["severity"] == "critical"
    assert first["case_id"] == case_id("credit_card", "C-1", T0)
    assert (first["amount_total"], first["currency"], first["counterparties"]) == (200.0, "EUR", ["M-1"])
    assert first["window_end"] == iso(T0 + DAY)


def test_weights_say_how_much_a_detector_s_hit_counts():
    alerts = [alert(1, "C-1", T0, "credit_card.card_testing", 0.6), alert(2, "C-1", T0 + 1, "large_amount", 0.85)]
    weights = CaseWeights(detectors={"large_amount": 0.5})
    (case,) = cases_of(alerts, weights)
    assert case["risk"] == pytest.approx(1 - (1 - 0.6) * (1 - 0.5 * 0.85))
    (muted,) = cases_of(alerts, CaseWeights(default=0.0))
    assert (muted["risk"], muted["severity"]) == (0.0, "medium")


def test_an_event_s_amount_counts_once_and_mixed_currencies_have_no_total():
    same_event = [alert(1, "C-1", T0, "a", 0.6), alert(1, "C-1", T0, "b", 0.6) | {"alert_id": "a1b"}]
    (case,) = cases_of(same_event, CaseWeights())
    assert (case["alert_count"], case["amount_total"]) == (2, 100.0)
    mixed = [alert(1, "C-1", T0, "a", 0.6), alert(2, "C-1", T0 + 1, "a", 0.6) | {"currency": "USD"}]
    (case,) = cases_of(mixed, CaseWeights())
    assert (case["amount_total"], case["currency"]) == (None, None)


def test_the_same_alerts_make_the_same_case_in_any_order_and_again():
    rng = random.Random(4)
    alerts = [alert(i, f"C-{rng.randrange(5)}", T0 + rng.randrange(3 * DAY), rng.choice(["a", "b", "c"]),
                    round(rng.random(), 3)) for i in range(200)]
    expected = cases_of(alerts, CaseWeights())
    shuffled = list(alerts)
    rng.shuffle(shuffled)
    assert cases_of(shuffled, CaseWeights()) == expected
    assert cases_of(shuffled + alerts[:50], CaseWeights()) == expected  # a redelivered alert changes nothing


def test_an_entity_keeps_its_latest_windows_and_a_much_later_alert_cannot_reopen_an_old_one():
    cases = EntityCases("credit_card", "C-1", DAY)
    assert cases.case_for(T0) is not None and cases.case_for(T0 + DAY) is not None
    assert cases.case_for(T0 + 2 * DAY) is not None
    assert sorted(cases.cases) == [T0 + DAY, T0 + 2 * DAY]
    assert cases.case_for(T0 + 5) is None  # its window was forgotten: it would overwrite the sent case
    stored = EntityCases.from_json("credit_card", "C-1", DAY, orjson.loads(orjson.dumps(cases.to_json())))
    assert sorted(stored.cases) == sorted(cases.cases)
    assert EntityCases.from_json("credit_card", "C-1", DAY // 2, cases.to_json()).cases == {}


def test_a_case_record_follows_the_committed_schema_and_its_headers_repeat_it():
    schema = json.loads(CASE_SCHEMA_PATH.read_text())
    (case,) = cases_of([alert(1, "C-1", T0, "a", 0.6, amount=None, counterparty=None)], CaseWeights())
    jsonschema_rs.validate(schema, case, validate_formats=True)
    assert case_headers(case) == {"bankguard.schema": b"case.v1", "bankguard.case_id": case["case_id"].encode(),
                                  "bankguard.scenario": b"credit_card", "bankguard.severity": b"high"}


def test_a_rule_s_risk_is_its_score_and_a_model_s_its_calibrated_risk():
    assert alert_risk(alert(1, "C", T0, "a", 0.6)) == 0.6
    assert alert_risk(alert(1, "C", T0, "model:m", 0.99, kind="model", risk=0.7)) == 0.7


@pytest.mark.parametrize("batch", [1, 97, 100_000])
def test_the_stream_s_cases_are_the_cases_of_its_alerts_whatever_the_batches(batch):
    """The worker builds cases alert by alert in its entity states; the same alerts grouped
    at once give the same final records."""
    rules = load_rules()
    scorer = StreamScorer(StateStore({}), lambda: rules)
    rows = traffic("credit_card")
    messages = [Incoming("credit_card", "bankguard.tx.credit_card", 0, offset, row.event["entity_id"].encode(),
                         orjson.dumps(row.event), row.timestamp_ms) for offset, row in enumerate(rows)]
    alerts, latest = [], {}
    for start in range(0, len(messages), batch):
        scored = scorer.score(messages[start:start + batch])
        alerts += [orjson.loads(out.value) for out in scored.alerts]
        latest |= {out.key: orjson.loads(out.value) for out in scored.cases}
    assert len(alerts) > 20
    expected = cases_of(alerts, rules.cases)
    assert sorted(latest.values(), key=lambda c: c["case_id"]) == expected
    assert sum(case["alert_count"] for case in expected) == len(alerts)
    assert all(event_time_ms(a["event_time"]) >= event_time_ms(c["window_start"])
               for c in expected for a in c["alerts"])
