"""insurance_claims generator: each pattern's contextual signature, claim history, rates."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import numpy as np

from bankguard.producers.scenarios.base import Emitted
from bankguard.producers.scenarios.insurance_claims import InsuranceClaimsGenerator
from scenario_traffic import START_MS, DAY, period_fixtures, assert_events_valid, grouped

DAYS = 45


pools, rows = period_fixtures(InsuranceClaimsGenerator, seed=4, entities=600, pool_size=300,
                              period_ms=DAY, periods=DAYS, per_period=1_200)


def age_days(row: Emitted) -> int:
    claimed = datetime.fromisoformat(row.event["event_time"].replace("Z", "+00:00")).date()
    return (claimed - date.fromisoformat(row.event["policy_start"])).days


def typical(rows: list[Emitted]) -> dict[str, float]:
    """Median background claim per line: the peers an early claim stands out from."""
    amounts: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.pattern is None:
            amounts[row.event["claim_type"]].append(row.event["amount"])
    return {line: float(np.median(values)) for line, values in amounts.items()}


def test_early_claims_are_large_and_weeks_after_the_start(rows):
    early, norm = [r for r in rows if r.pattern == "early_claim"], typical(rows)
    assert len(early) >= 30
    for row in early:
        assert 0 <= age_days(row) <= 45 and row.event["prior_claims"] == 0
        assert row.event["amount"] > 2 * norm[row.event["claim_type"]]
    assert np.median([r.event["amount"] / norm[r.event["claim_type"]] for r in early]) > 4
    # A young policy alone is no signal: new policies claim ordinary amounts too.
    assert sum(age_days(r) <= 60 for r in rows if r.pattern is None) > 50


def test_claim_rings_share_a_provider_and_a_bill_across_policies(rows):
    rings = [g for g in grouped(rows, "claim_ring", "counterparty").values()
             if g[0].timestamp_ms < START_MS + (DAYS - 2) * DAY]
    assert len(rings) >= 10
    for ring in rings:
        assert len({r.key for r in ring}) == len(ring) >= 4
        assert len({r.event["claim_type"] for r in ring}) == 1
        assert ring[-1].timestamp_ms - ring[0].timestamp_ms <= 2 * DAY
        amounts = [r.event["amount"] for r in ring]
        assert max(amounts) / min(amounts) < 1.16


def test_repeat_claims_come_from_a_policy_quiet_until_then(rows):
    background = grouped(rows, None)
    checked = 0
    for key, group in grouped(rows, "repeat_claims").items():
        if group[0].timestamp_ms > START_MS + (DAYS - 28) * DAY:
            continue
        assert key not in background  # no claims in the stream before or between
        assert 3 <= len(group) <= 5
        assert group[-1].timestamp_ms - group[0].timestamp_ms < 28 * DAY
        priors = [r.event["prior_claims"] for r in group]
        assert priors == list(range(priors[0], priors[0] + len(group)))
        assert len({r.event["policy_start"] for r in group}) == 1
        checked += 1
    assert checked >= 10


def test_each_policy_keeps_its_start_and_line_and_counts_up_its_claims(rows):
    seen: dict[str, tuple[str, str, int]] = {}
    for row in rows:
        event = row.event
        if row.key in seen:
            start, line, prior = seen[row.key]
            assert (event["policy_start"], event["claim_type"]) == (start, line)
            assert event["prior_claims"] >= prior
        seen[row.key] = (event["policy_start"], event["claim_type"], event["prior_claims"])
    lines = [row.event["claim_type"] for row in rows if row.pattern is None]
    counts = [lines.count(line) for line in ("health", "auto", "property", "life")]
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0


def test_every_event_validates_and_patterns_carry_the_same_fields(rows):
    assert_events_valid("insurance_claims", rows)
    assert len({frozenset(row.event) for row in rows}) == 1
