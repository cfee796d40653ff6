"""aml_kyc generator: each pattern's contextual signature, realistic statement text, rates."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from bankguard.producers.scenarios.aml_kyc import HIGH_RISK, KEYWORDS, AmlKycGenerator
from bankguard.producers.scenarios.base import Emitted
from scenario_traffic import START_MS, HOUR, period_fixtures, assert_events_valid

HOURS = 72
LEGIT_MEMOS = {"工资", "奖金", "年终奖", "报销", "货款", "租金", "购房款", "装修款", "学费", "医疗费",
               "保险", "理财", "还款", "转账", "消费", "水电费", "ATM取款", "现金存入", None}


pools, rows = period_fixtures(AmlKycGenerator, seed=2, entities=600, pool_size=400,
                              period_ms=HOUR, periods=HOURS, per_period=1_000)


def by_entity(rows: list[Emitted], pattern: str | None) -> dict[str, list[Emitted]]:
    groups: dict[str, list[Emitted]] = defaultdict(list)
    for row in rows:
        if row.pattern == pattern:
            groups[row.key].append(row)
    return groups


def cny(row: Emitted) -> float:
    return row.event["amount"] * (7.1 if row.event["currency"] == "USD" else 1.0)


def usual(rows: list[Emitted]) -> dict[str, float]:
    """Each customer's median background amount in CNY: the habit patterns depart from."""
    groups = by_entity(rows, None)
    return {key: float(np.median([cny(r) for r in group])) for key, group in groups.items()}


def test_structuring_sits_just_under_the_line_and_clusters_within_a_day(rows):
    groups = by_entity(rows, "structuring")
    complete = [g for g in groups.values() if g[0].timestamp_ms < START_MS + (HOURS - 24) * HOUR]
    assert len(complete) >= 10
    for group in complete:
        assert all(45_000 <= r.event["amount"] < 50_000 for r in group)
        assert all(r.event["direction"] == "in" for r in group)
        times = [r.timestamp_ms for r in group]
        assert any(sum(t <= u < t + 24 * HOUR for u in times) >= 3 for t in times)
    # Alone, such a credit is ordinary: background has them, but not three in a day.
    credits = [r for r in rows if r.event["direction"] == "in" and 45_000 <= cny(r) < 50_000]
    near = by_entity(credits, None)
    assert near
    for group in near.values():
        times = [r.timestamp_ms for r in group]
        assert all(sum(t <= u < t + 24 * HOUR for u in times) < 3 for t in times)


def test_pep_wires_go_to_high_risk_countries_far_above_habit(rows):
    groups, habit = by_entity(rows, "pep_high_risk_corridor"), usual(rows)
    assert groups
    for key, group in groups.items():
        for row in group:
            event = row.event
            assert event["pep"] and event["channel"] == "wire" and event["direction"] == "out"
            assert event["destination_country"] in HIGH_RISK
            assert cny(row) > 20 * habit.get(key, 0.0)
    # The same corridors carry ordinary, habit-sized background payments.
    assert any(r.event["destination_country"] in HIGH_RISK for r in rows if r.pattern is None)


def test_rapid_in_out_sends_a_large_credit_on_within_hours(rows):
    checked = 0
    for group in by_entity(rows, "rapid_in_out").values():
        credits = [r for r in group if r.event["direction"] == "in"]
        if len(credits) != 1 or credits[0].timestamp_ms > START_MS + (HOURS - 8) * HOUR:
            continue  # overlapping or unfinished episodes
        debits = [r for r in group if r.event["direction"] == "out"]
        assert group[0] is credits[0] and len(debits) >= 3
        assert len({r.event["counterparty"] for r in debits}) == len(debits)
        assert 0.9 < sum(r.event["amount"] for r in debits) / credits[0].event["amount"] < 1.0
        assert debits[-1].timestamp_ms - credits[0].timestamp_ms < 7 * HOUR
        checked += 1
    assert checked >= 10


def test_keyword_memos_only_in_large_illicit_transfers(rows):
    flagged = [r for r in rows if r.event["memo"] in KEYWORDS]
    assert flagged and all(r.pattern == "illicit_keyword_flow" for r in flagged)
    habit = usual(rows)
    assert all(cny(r) > 5 * habit[r.key] for r in flagged if r.key in habit)


def test_background_reads_like_a_chinese_statement(rows):
    background = [r for r in rows if r.pattern is None]
    assert {r.event["memo"] for r in background} <= LEGIT_MEMOS
    cny_share = np.mean([r.event["currency"] == "CNY" for r in background])
    domestic = np.mean([r.event["destination_country"] == r.event["source_country"] == "CN"
                        for r in background])
    assert cny_share > 0.97 and domestic > 0.97
    named = [r.event["counterparty"] for r in background if r.event["counterparty"]]
    assert np.mean([any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in named]) > 0.97
    large = [r for r in background if cny(r) >= 50_000]
    assert 0.001 < len(large) / len(background) < 0.01  # a few per thousand, each explained
    assert all(r.event["memo"] not in {"消费", "水电费", "ATM取款"} for r in large)
    assert np.mean([r.event["memo"] in {"购房款", "装修款", "年终奖"} for r in large]) > 0.3


def test_salary_is_monthly_from_one_employer(pools):
    payday_month = START_MS - 20 * 24 * HOUR  # 6 to 30 October: most paydays of one month
    gen = AmlKycGenerator(seed=4, n_entities=300, pools=pools)
    rows = [row for day in range(24) for row in gen.generate(
        payday_month + day * 24 * HOUR, payday_month + (day + 1) * 24 * HOUR, 1_500)]
    salaries = by_entity([r for r in rows if r.event["memo"] == "工资"], None)
    assert len(salaries) > 100
    for group in salaries.values():
        assert len(group) == 1  # at most one a month
        assert group[0].event["direction"] == "in" and group[0].event["channel"] == "internal"
    employers = {key: gen.companies[gen.employer[int(key[4:])]] for key in salaries}
    assert all(g[0].event["counterparty"] == employers[key] for key, g in salaries.items())


def test_pep_is_a_stable_customer_attribute(rows):
    pep_of: dict[str, set[bool]] = defaultdict(set)
    for row in rows:
        pep_of[row.key].add(row.event["pep"])
    assert all(len(values) == 1 for values in pep_of.values())
    share = np.mean([values == {True} for values in pep_of.values()])
    assert 0.002 < share < 0.03


def test_every_event_validates_and_patterns_carry_the_same_fields(rows):
    assert_events_valid("aml_kyc", rows)
    assert len({frozenset(row.event) for row in rows}) == 1
