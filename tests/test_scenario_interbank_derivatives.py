"""interbank_derivatives generator: each pattern's contextual signature, its share, determinism,
schema."""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from bankguard.producers.scenarios.base import Emitted, Event
from bankguard.producers.scenarios.interbank_derivatives import InterbankDerivativesGenerator
from scenario_traffic import (
    HOUR, DAY,
    Generated, assert_events_valid, busy, drained_run, episodes,
    recorded_fixtures,
)

T0 = 1_700_000_000_000
TENORS = {1, 7, 14, 30, 90, 180, 365, 730, 1825}
CNY_PER = {"CNY": 1.0, "USD": 7.2}


# Ten days of deals, then two empty days that drain the episodes still running.
run = drained_run(T0, 10 * DAY, 2 * DAY)
generated, rows = recorded_fixtures(InterbankDerivativesGenerator, run)


def cny(event: Event) -> float:
    return event["amount"] * CNY_PER[event["currency"]]


def test_every_event_validates(rows: list[Emitted]) -> None:
    assert_events_valid("interbank_derivatives", rows)
    for row in rows:
        assert row.event["tenor_days"] in TENORS


def test_rates_follow_a_yield_curve(rows: list[Emitted]) -> None:
    swaps: dict[tuple[str, int], list[float]] = defaultdict(list)
    for row in rows:
        if row.pattern is None and row.event["derivative_type"] == "swap":
            swaps[(row.event["currency"], row.event["tenor_days"])].append(
                row.event["interest_rate"])
    cny_curve = [median(swaps[("CNY", t)]) for t in (90, 180, 365, 730, 1825)]
    assert cny_curve == sorted(cny_curve) and 1.5 <= cny_curve[0] < cny_curve[-1] <= 3.7
    assert all(3.9 <= median(v) <= 5.6 for (ccy, _), v in swaps.items() if ccy == "USD")


def test_exposure_concentration_beats_the_banks_own_norm(generated: Generated) -> None:
    rows = generated[1]
    history: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if row.pattern is None:
            history[row.key].append((row.timestamp_ms, cny(row.event)))
    found = episodes(generated, "exposure_concentration")
    assert len(found) >= 10
    ratios, alone = [], []
    crowded = busy(rows)
    for episode in found:
        assert len(episode) >= 6
        assert episode[-1].timestamp_ms - episode[0].timestamp_ms <= 6 * HOUR
        deals = history[episode[0].key]
        if len(deals) < 3 or episode[0].key in crowded:
            continue
        usual = median(size for _, size in deals)
        busiest = max(sum(s for t, s in deals if 0 <= t - start <= 6 * HOUR) for start, _ in deals)
        total = sum(cny(row.event) for row in episode)
        assert total >= 10 * usual
        ratios.append(total / busiest)
        alone += [cny(row.event) / usual for row in episode]
    # the pile-up beats the bank's own busiest hours ...
    assert len(ratios) >= 6 and median(ratios) >= 2
    assert sum(ratio > 1 for ratio in ratios) >= 0.75 * len(ratios)
    # ... though each deal is only a few times the bank's usual size
    assert median(alone) <= 5


def test_off_market_rate_departs_from_peers_at_that_tenor(rows: list[Emitted]) -> None:
    peers: dict[tuple[str, int, str], list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if row.pattern is None:
            e = row.event
            peers[(e["currency"], e["tenor_days"], e["derivative_type"])].append(
                (row.timestamp_ms, e["interest_rate"]))

    def departure(row: Emitted) -> float | None:
        e = row.event
        same = [rate for t, rate in peers[(e["currency"], e["tenor_days"], e["derivative_type"])]
                if abs(t - row.timestamp_ms) <= DAY and t != row.timestamp_ms]
        return abs(e["interest_rate"] - median(same)) if len(same) >= 5 else None

    labelled = [row for row in rows if row.pattern == "off_market_rate"]
    off = [d for d in map(departure, labelled) if d is not None]
    assert len(off) >= 0.8 * len(labelled) >= 50 and min(off) >= 0.4
    normal = [d for d in map(departure, [r for r in rows if r.pattern is None][::6]) if d]
    assert len(normal) >= 2_000 and max(normal) < 0.4
    # alone, the rate is one the curve quotes somewhere: within the currency's normal range
    span = {ccy: (min(v), max(v)) for ccy, v in (
        (c, [r.event["interest_rate"] for r in rows if r.pattern is None
             and r.event["currency"] == c]) for c in CNY_PER)}
    inside = [span[r.event["currency"]][0] <= r.event["interest_rate"]
              <= span[r.event["currency"]][1] for r in labelled]
    assert sum(inside) >= 0.9 * len(inside)
