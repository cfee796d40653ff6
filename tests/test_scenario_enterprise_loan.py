"""enterprise_loan generator: each pattern's contextual signature, its share, determinism,
schema."""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from bankguard.producers.scenarios.base import Emitted, Event
from bankguard.producers.scenarios.enterprise_loan import EnterpriseLoanGenerator
from scenario_traffic import (
    DAY,
    Generated, assert_events_valid, drained_run, episodes,
    recorded_fixtures,
)

T0 = 1_700_000_000_000


# A month of applications, then an empty month that drains the episodes still running.
run = drained_run(T0, 30 * DAY, 30 * DAY)
generated, rows = recorded_fixtures(EnterpriseLoanGenerator, run)


def background_by_company(rows: list[Emitted]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for row in rows:
        if row.pattern is None:
            out[row.key].append(row.event)
    return out


def test_every_event_validates(rows: list[Emitted]) -> None:
    assert_events_valid("enterprise_loan", rows)


def test_background_companies_keep_their_branches_and_financials(rows: list[Emitted]) -> None:
    for events in background_by_company(rows).values():
        assert len({e["branch_id"] for e in events}) <= 3
        scores = [e["credit_score"] for e in events]
        debts = [e["debt_ratio"] for e in events]
        assert max(scores) - min(scores) < 45
        assert max(debts) <= 1.4 * min(debts)


def test_loan_stacking_spreads_rising_requests_over_new_branches(
    generated: Generated, rows: list[Emitted],
) -> None:
    background = background_by_company(rows)
    large = [e for events in background.values() for e in events
             if e["amount"] >= 0.2 * e["annual_revenue"]]
    assert len(large) >= 50  # a request that size is not suspicious by itself
    found = episodes(generated, "loan_stacking")
    assert len(found) >= 10
    for episode in found:
        events = [row.event for row in episode]
        revenue = events[0]["annual_revenue"]
        amounts = [e["amount"] for e in events]
        known = {e["branch_id"] for e in background.get(episode[0].key, [])}
        assert len(events) >= 4
        assert episode[-1].timestamp_ms - episode[0].timestamp_ms <= 3 * DAY
        assert len({e["branch_id"] for e in events}) == len(events)
        assert len({e["branch_id"] for e in events} - known) >= len(events) - 1
        assert amounts == sorted(amounts) and amounts[-1] > amounts[0]
        # each request is affordable alone, together they are not
        assert max(amounts) <= 0.35 * revenue < 0.6 * revenue <= sum(amounts)
        assert len({e["collateral_value"] for e in events}) == 1  # one asset pledged everywhere


def test_deteriorating_financials_trend_then_large_request(
    generated: Generated, rows: list[Emitted],
) -> None:
    background = background_by_company(rows)
    found = episodes(generated, "deteriorating_financials")
    assert len(found) >= 10
    compared = 0
    for episode in found:
        events = [row.event for row in episode]
        scores = [e["credit_score"] for e in events]
        debts = [e["debt_ratio"] for e in events]
        revenues = [e["annual_revenue"] for e in events]
        assert len(events) >= 3
        assert scores == sorted(scores, reverse=True) and scores[0] - scores[-1] >= 50
        assert debts == sorted(debts) and (debts[-1] >= 1.5 * debts[0] or debts[-1] >= 9.9)
        assert revenues == sorted(revenues, reverse=True) and revenues[-1] < revenues[0]
        assert events[-1]["amount"] >= 2 * max(e["amount"] for e in events[:-1])
        assert events[-1]["collateral_value"] == 0.0
        history = background.get(episode[0].key, [])
        if len(history) >= 5:
            compared += 1
            assert events[-1]["amount"] >= 2 * median(e["amount"] for e in history)
            assert abs(scores[0] - median(e["credit_score"] for e in history)) <= 20
    assert compared >= 5
