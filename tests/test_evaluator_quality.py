"""The evaluator's figures from alerts, outcomes and event counts, in process."""

from __future__ import annotations

import random

import pytest

from bankguard.events import ms_time
from bankguard.outcomes import Outcome
from bankguard.producers.investigations import SeenAlert, SeenFraud, desk_outcomes
from bankguard.settings import InvestigationSettings
from bankguard.stream_agents.evaluator.quality import ALL, DAY_MS, AlertSeen, QualityLedger, alert_seen

T0 = 20_000 * DAY_MS  # midnight UTC of day 20,000
HOUR = 3_600_000


def alert(event: str, detector: str, score: float, *, day: int = 0, entity: str | None = None,
          scenario: str = "credit_card") -> AlertSeen:
    return AlertSeen(scenario, event, entity or f"card-{event}", T0 + day * DAY_MS + HOUR, detector, score)


def outcome(event: str, label: str, *, day: int = 0, entity: str | None = None, source: str = "investigation",
            decided_days: float = 1.5, scenario: str = "credit_card") -> Outcome:
    event_ms = T0 + day * DAY_MS + HOUR
    return Outcome(event_id=event, entity_id=entity or f"card-{event}", scenario=scenario, label=label,
                   source=source, event_time=ms_time(event_ms),
                   decided_at=ms_time(event_ms + int(decided_days * DAY_MS)))


def ledger(**overrides) -> QualityLedger:
    options = {"k": 2, "window_days": 7, "decision_delay_days": 2.0, "recall_delay_days": 10.0,
               "budgets": {"credit_card": 10.0}} | overrides
    return QualityLedger(**options)


def test_precision_counts_decided_alerts_only_and_recall_counts_chargebacks_as_misses_once_they_are_back():
    book = ledger()
    for event, score in (("e1", 0.9), ("e2", 0.8), ("e3", 0.7), ("e4", 0.6)):
        book.add_alert(alert(event, "model:hist_gbdt", score))
    book.add_outcome(outcome("e1", "fraud"))
    book.add_outcome(outcome("e2", "fraud"))
    book.add_outcome(outcome("e3", "legitimate"))  # e4: nobody decided it yet
    book.add_outcome(outcome("e9", "fraud", source="chargeback", decided_days=9))  # a fraud nobody alerted on
    book.add_events("credit_card", T0 + 2 * HOUR, 1_000)
    figures = book.figures()["credit_card"]
    model = figures.detectors["model:hist_gbdt"]
    assert (model.alerted_events, model.decided_alerts, model.true_alerts) == (4, 3, 2)
    assert model.precision == pytest.approx(2 / 3)
    # Day 0's chargebacks may take ten days: until then its misses are not all back.
    assert (model.recall, figures.recall_days, figures.matured_frauds) == (None, 0, 0)
    book.add_events("credit_card", T0 + 11 * DAY_MS - 1)
    assert book.figures()["credit_card"].detectors[ALL].recall is None
    book.add_events("credit_card", T0 + 11 * DAY_MS)  # ten days after day 0's end
    figures = book.figures()["credit_card"]
    model = figures.detectors["model:hist_gbdt"]
    assert model.recall == pytest.approx(2 / 3)  # e1, e2 of the three frauds
    assert (figures.matured_frauds, figures.recall_days, model.caught_frauds) == (3, 1, 2)
    assert model.alerted_events == 0, "day 0 has left the precision window"


def test_recall_does_not_read_investigated_frauds_alone_as_every_fraud():
    """On a young day only the investigations are in, and they find frauds on alerted
    entities: counted as every fraud, they would read recall near 1 whatever was missed."""
    book = ledger()
    book.add_alert(alert("e1", "model:m", 0.9))
    book.add_outcome(outcome("e1", "fraud"))
    book.add_events("credit_card", T0 + 3 * DAY_MS)  # investigations in, chargebacks not
    assert book.figures()["credit_card"].detectors[ALL].recall is None
    for missed in ("m1", "m2", "m3"):
        book.add_outcome(outcome(missed, "fraud", source="chargeback", decided_days=8))
    book.add_events("credit_card", T0 + 11 * DAY_MS)
    assert book.figures()["credit_card"].detectors[ALL].recall == pytest.approx(1 / 4)


def test_all_joins_the_detectors_per_event_and_each_detector_keeps_its_own_figures():
    book = ledger()
    book.add_alert(alert("e1", "model:hist_gbdt", 0.9))
    book.add_alert(alert("e1", "large_amount", 0.6))  # the same event, a second detector
    book.add_alert(alert("e2", "large_amount", 0.6))
    book.add_outcome(outcome("e1", "fraud"))
    book.add_outcome(outcome("e2", "legitimate"))
    book.add_events("credit_card", T0 + 2 * HOUR)
    figures = book.figures()["credit_card"]
    assert set(figures.detectors) == {"model:hist_gbdt", "large_amount", ALL}
    assert (figures.detectors[ALL].alerts, figures.detectors[ALL].alerted_events) == (3, 2)
    assert figures.detectors[ALL].precision == 0.5
    assert figures.detectors["model:hist_gbdt"].precision == 1.0
    assert figures.detectors["large_amount"].precision == 0.5
    assert figures.summary()["alerts_per_1000_events"] == 3_000.0  # one event counted on the topic


def test_a_chargeback_overturns_a_cleared_investigation():
    book = ledger()
    book.add_alert(alert("e1", "large_amount", 0.6))
    book.add_outcome(outcome("e1", "legitimate"))
    book.add_outcome(outcome("e1", "fraud", source="chargeback", decided_days=9))
    book.add_events("credit_card", T0)
    assert book.figures()["credit_card"].detectors[ALL].precision == 1.0


def test_a_chargeback_alone_does_not_decide_an_alert():
    """Only frauds come back as chargebacks: counted as decided, they would lift precision."""
    book = ledger()
    book.add_alert(alert("e1", "large_amount", 0.6))
    book.add_alert(alert("e2", "large_amount", 0.5))
    book.add_outcome(outcome("e1", "legitimate"))
    book.add_outcome(outcome("e2", "fraud", source="chargeback", decided_days=9))  # nobody investigated it
    book.add_events("credit_card", T0)
    figures = book.figures()["credit_card"].detectors[ALL]
    assert (figures.decided_alerts, figures.precision) == (1, 0.0)


def test_weighted_investigations_estimate_the_precision_of_every_alert_not_of_the_top_of_the_queue():
    """The desk works the riskiest cases, where precision is highest; its below-the-line sample,
    weighed by what it stands for, brings the estimate to the precision over all alerts."""
    rng = random.Random(8)
    alerts, frauds, fraud_ids = [], [], set()
    for day in range(80):
        for i in range(150):  # alerted events of 150 entities a day, the riskier the likelier fraud
            score, event_ms = rng.random(), T0 + day * DAY_MS + HOUR + i
            event, entity = f"d{day}-{i}", f"card-{i}"
            alerts.append(SeenAlert(f"{event}/m", event, "credit_card", entity, event_ms, score))
            if rng.random() < score ** 3:
                fraud_ids.add(event)
                frauds.append(SeenFraud(event, "credit_card", entity, event_ms, None))
    truth = len(fraud_ids) / len(alerts)

    def estimate(sample: int) -> float | None:
        config = InvestigationSettings(capacity_per_day=10, below_line_sample_per_day=sample, seed=4)
        book = ledger(window_days=100)
        for seen in alerts:
            book.add_alert(AlertSeen("credit_card", seen.event_id, seen.entity_id, seen.event_ms, "m", seen.score))
            book.add_events("credit_card", seen.event_ms)
        for decided in desk_outcomes(config, alerts, frauds):
            book.add_outcome(decided)
        return book.figures()["credit_card"].detectors[ALL].precision

    assert estimate(10) == pytest.approx(truth, abs=0.04), truth
    assert (estimate(0) or 0) > truth + 0.4, "the top of the queue alone overstates it"


def test_cp_at_k_counts_only_days_whose_decisions_are_all_in():
    book = ledger(k=2)
    # Day 0: the detector's top two entities are card-a (fraud) and card-b (cleared).
    book.add_alert(alert("a1", "model:m", 0.95, entity="card-a"))
    book.add_alert(alert("b1", "model:m", 0.90, entity="card-b"))
    book.add_alert(alert("c1", "model:m", 0.10, entity="card-c"))  # third: outside k
    book.add_outcome(outcome("a1", "fraud", entity="card-a"))
    book.add_outcome(outcome("b1", "legitimate", entity="card-b"))
    book.add_outcome(outcome("c1", "fraud", entity="card-c"))
    # Day 2: alerts whose decisions are still to come.
    book.add_alert(alert("d1", "model:m", 0.99, day=2, entity="card-d"))
    book.add_events("credit_card", T0 + 2 * DAY_MS + 23 * HOUR)  # day 0 ended 1 day 23 h ago: not settled
    assert book.figures()["credit_card"].detectors["model:m"].cp_days == 0
    book.add_events("credit_card", T0 + 3 * DAY_MS)  # two days after day 0's end
    figures = book.figures()["credit_card"].detectors["model:m"]
    assert (figures.cp_at_k, figures.cp_days) == (0.5, 1)
    book.add_events("credit_card", T0 + 4 * DAY_MS)  # day 1 (no alerts) settled too: nothing to rank
    assert book.figures()["credit_card"].detectors["model:m"].cp_days == 1


def test_alerts_of_the_last_closed_day_are_held_against_the_budget_for_its_events():
    book = ledger()
    for index in range(5):
        book.add_alert(alert(f"y{index}", "model:m", 0.9, day=0))
    book.add_alert(alert("t0", "model:m", 0.9, day=1))  # today: not closed
    book.add_events("credit_card", T0 + HOUR, 200)
    book.add_events("credit_card", T0 + DAY_MS + HOUR, 50)
    figures = book.figures()["credit_card"]
    assert figures.events_last_day == 200
    assert figures.budget_last_day == pytest.approx(10.0 * 200 / 1000)
    assert figures.detectors["model:m"].alerts_last_day == 5


def test_days_that_left_the_window_are_forgotten():
    book = ledger(window_days=2, recall_delay_days=1.0)
    book.add_alert(alert("old", "model:m", 0.9, day=0))
    book.add_outcome(outcome("old", "fraud", day=0))
    book.add_events("credit_card", T0 + HOUR)
    book.add_alert(alert("new", "model:m", 0.9, day=3))
    book.add_events("credit_card", T0 + 3 * DAY_MS + HOUR)
    figures = book.figures()["credit_card"]
    assert figures.detectors["model:m"].alerted_events == 1
    assert figures.confirmed_frauds == 0
    assert figures.events == 1
    # Recall's window (the two days that ended a day ago: 1 and 0) still holds day 0.
    assert (figures.matured_frauds, figures.detectors["model:m"].recall) == (1, 1.0)
    book.add_events("credit_card", T0 + 4 * DAY_MS + HOUR)  # recall's window is days 1 and 2 now
    figures = book.figures()["credit_card"]
    assert (figures.matured_frauds, figures.detectors["model:m"].recall) == (0, None)


def test_the_figures_do_not_depend_on_the_order_of_arrival():
    rng = random.Random(3)
    inputs = []
    for index in range(300):
        day = rng.randrange(5)
        entity = f"card-{rng.randrange(40)}"
        inputs.append(("alert", alert(f"e{index}", rng.choice(["model:m", "velocity"]), round(rng.random(), 3),
                                      day=day, entity=entity)))
        if rng.random() < 0.6:
            inputs.append(("outcome", outcome(f"e{index}", rng.choice(["fraud", "legitimate"]), day=day,
                                              entity=entity)))
        inputs.append(("events", T0 + day * DAY_MS + rng.randrange(DAY_MS)))

    def figures(records):
        book = ledger()
        for kind, record in records:
            if kind == "alert":
                book.add_alert(record)
            elif kind == "outcome":
                book.add_outcome(record)
            else:
                book.add_events("credit_card", record)
        return book.figures()

    expected = figures(inputs)
    shuffled = list(inputs)
    rng.shuffle(shuffled)
    assert figures(shuffled) == expected
    assert expected["credit_card"].detectors[ALL].cp_days > 0


def test_an_alert_record_is_read_from_the_topic_format():
    record = {"scenario": "credit_card", "event_id": "e1", "entity_id": "card-1",
              "event_time": "2026-12-01T10:00:00+00:00", "score": 0.7,
              "detector": {"kind": "model", "id": "model:hist_gbdt", "version": "abc"}}
    seen = alert_seen(record)
    assert (seen.detector, seen.score, seen.entity_id) == ("model:hist_gbdt", 0.7, "card-1")
    with pytest.raises(ValueError):
        alert_seen(record | {"scenario": "lottery"})
    with pytest.raises(KeyError):
        alert_seen({key: value for key, value in record.items() if key != "detector"})
