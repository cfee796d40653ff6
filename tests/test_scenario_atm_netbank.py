"""atm_netbank generator: each pattern's contextual signature, channel coherence, rates."""

from __future__ import annotations


from bankguard.producers.scenarios.atm_netbank import (
    DAILY_CAP, WITHDRAWAL_LIMIT, AtmNetbankGenerator,
)
from scenario_traffic import START_MS, MINUTE, HOUR, period_fixtures, assert_events_valid, grouped

HOURS = 24


pools, rows = period_fixtures(AtmNetbankGenerator, seed=3, entities=800, pool_size=400,
                              period_ms=HOUR, periods=HOURS, per_period=2_000)


def city(atm_id: str) -> str:
    return atm_id.split("-")[1]


def test_takeover_fails_repeatedly_from_a_new_device_then_pays_a_new_payee(rows):
    history = grouped(rows, None)
    checked = 0
    for key, group in grouped(rows, "credential_stuffing_takeover").items():
        devices = {r.event["device_id"] for r in group}
        if len(devices) != 1 or group[0].timestamp_ms > START_MS + 23 * HOUR:
            continue  # two episodes on one account, or cut off by the end of the run
        logins = [r.event for r in group if r.event["action"] == "login"]
        transfers = [r for r in group if r.event["action"] == "transfer"]
        assert len(logins) >= 4 and transfers
        assert [e["login_attempts"] for e in logins] == list(range(1, len(logins) + 1))
        assert [e["success"] for e in logins] == [False] * (len(logins) - 1) + [True]
        success_ms = next(r.timestamp_ms for r in group
                          if r.event["action"] == "login" and r.event["success"])
        assert all(0 < r.timestamp_ms - success_ms < 20 * MINUTE for r in transfers)
        own = history.get(key, [])
        assert group[0].event["device_id"] not in {r.event["device_id"] for r in own}
        known_payees = {r.event["counterparty"] for r in own}
        assert not {r.event["counterparty"] for r in transfers} & known_payees
        checked += 1
    assert checked >= 10
    # A retry alone is ordinary: background logins fail and retry too.
    assert any(r.event["login_attempts"] >= 3 for r in rows if r.pattern is None)


def test_cash_out_hits_several_cities_within_an_hour_near_the_daily_cap(rows):
    checked = 0
    for group in grouped(rows, "atm_cash_out").values():
        if not 5 <= len(group) <= 8 or group[0].timestamp_ms > START_MS + 23 * HOUR:
            continue
        events = [r.event for r in group]
        assert all(e["action"] == "withdrawal" and e["access_method"] == "ATM" for e in events)
        assert all(e["amount"] <= WITHDRAWAL_LIMIT and e["amount"] % 100 == 0 for e in events)
        assert 0.75 * DAILY_CAP <= sum(e["amount"] for e in events) <= DAILY_CAP
        assert len({city(e["counterparty"]) for e in events}) >= 3
        assert group[-1].timestamp_ms - group[0].timestamp_ms < HOUR
        checked += 1
    assert checked >= 10
    # Background accounts stay in one or two cities within any hour.
    for group in grouped([r for r in rows if r.event["action"] == "withdrawal"], None).values():
        for first in group:
            near = {city(r.event["counterparty"]) for r in group
                    if 0 <= r.timestamp_ms - first.timestamp_ms < HOUR}
            assert len(near) < 3


def test_access_method_device_and_action_agree(rows):
    allowed = {"ATM": ({"atm"}, {"withdrawal", "balance_inquiry"}),
               "Netbank": ({"desktop"}, {"login", "transfer"}),
               "MobileApp": ({"mobile", "tablet"}, {"login", "transfer"})}
    for row in rows:
        event = row.event
        devices, actions = allowed[event["access_method"]]
        assert event["device_type"] in devices and event["action"] in actions
        assert (event["amount"] is not None) == (event["action"] in {"withdrawal", "transfer"})


def test_every_event_validates_and_patterns_carry_the_same_fields(rows):
    assert_events_valid("atm_netbank", rows)
    assert len({frozenset(row.event) for row in rows}) == 1
