"""wealth_product generator: each pattern's contextual signature, its share, determinism, schema."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from bankguard.producers.scenarios.base import Emitted, Event
from bankguard.producers.scenarios.wealth_product import WealthProductGenerator
from scenario_traffic import (
    HOUR, DAY,
    Generated, assert_events_valid, busy, drained_run, episodes,
    recorded_fixtures,
)

T0 = 1_700_000_000_000
RISK_BY_TYPE = {"bond": {1, 2}, "fund": {2, 3}, "stock": {3, 4}, "crypto": {5}}


# Ten days of sales, then twenty empty days that drain the episodes still running.
run = drained_run(T0, 10 * DAY, 20 * DAY)
generated, rows = recorded_fixtures(WealthProductGenerator, run)


def unsuitable(event: Event) -> bool:
    return (event["investor_age"] >= 65 and event["risk_tolerance"] == "conservative"
            and event["product_risk_level"] >= 4)


def switched_from(event: Event) -> str | None:
    _, _, old = event["memo"].partition("; switch from ")
    return old or None


def test_every_event_validates(rows: list[Emitted]) -> None:
    assert_events_valid("wealth_product", rows)
    for row in rows:
        assert row.event["product_risk_level"] in RISK_BY_TYPE[row.event["product_type"]]


def test_age_and_tolerance_are_stable_per_customer(rows: list[Emitted]) -> None:
    profiles: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for row in rows:
        profiles[row.key].add((row.event["investor_age"], row.event["risk_tolerance"]))
    assert all(len(seen) == 1 for seen in profiles.values())
    stable = [next(iter(seen)) for seen in profiles.values()]
    old = [tolerance for age, tolerance in stable if age >= 65]
    young = [tolerance for age, tolerance in stable if age < 35]
    assert old.count("conservative") / len(old) > 2 * young.count("conservative") / len(young)


def test_mis_selling_one_advisor_many_elderly_clients_in_a_day(generated: Generated) -> None:
    rows = generated[1]
    found = episodes(generated, "mis_selling")
    assert len(found) >= 10
    for episode in found:
        events = [row.event for row in episode]
        assert len({row.key for row in episode}) >= 3
        assert len({e["counterparty"] for e in events}) == 1
        assert len({e["memo"] for e in events}) == 1  # one product pushed to all
        assert episode[-1].timestamp_ms - episode[0].timestamp_ms <= 8 * HOUR
        assert all(unsuitable(e) for e in events)
    background = [row for row in rows if row.pattern is None]
    lone = [row for row in background if unsuitable(row.event)]
    assert len(lone) >= 10  # one such sale alone happens in normal business
    by_advisor: dict[str, list[Emitted]] = defaultdict(list)
    for row in lone:
        by_advisor[row.event["counterparty"]].append(row)
    clusters = sum(
        any(len({o.key for o in sales if 0 <= o.timestamp_ms - r.timestamp_ms <= DAY}) >= 3
            for r in sales)
        for sales in by_advisor.values()
    )
    assert clusters <= 1


def test_churning_chains_switches_of_one_holding(generated: Generated) -> None:
    rows = generated[1]
    found = episodes(generated, "churning")
    assert len(found) >= 10
    for episode in found:
        events = [row.event for row in episode]
        amounts = [e["amount"] for e in events]
        gaps = [b.timestamp_ms - a.timestamp_ms for a, b in pairwise(episode)]
        assert len(events) >= 4 and all(12 * HOUR <= gap <= 48 * HOUR for gap in gaps)
        assert len({e["counterparty"] for e in events}) == 1
        assert all(switched_from(b) == a["memo"].split(";")[0] for a, b in pairwise(events))
        assert all(0.97 <= b / a <= 0.995 for a, b in pairwise(amounts))  # the fee
    # in normal traffic a switch rarely sells what the customer bought in the last week
    bought: dict[str, list[tuple[int, str]]] = defaultdict(list)
    switches = chained = 0
    crowded = busy(rows)
    for row in rows:
        if row.pattern is not None or row.key in crowded:
            continue
        old = switched_from(row.event)
        if old:
            switches += 1
            chained += any(code == old and row.timestamp_ms - ts <= 7 * DAY
                           for ts, code in bought[row.key])
        bought[row.key].append((row.timestamp_ms, row.event["memo"].split(";")[0]))
    assert switches >= 200 and chained <= 0.05 * switches
