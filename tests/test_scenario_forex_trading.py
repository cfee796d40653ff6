"""forex_trading generator: each pattern's contextual signature, its share, determinism, schema."""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from bankguard.producers.scenarios.base import Emitted, Event
from bankguard.producers.scenarios.forex_trading import ForexTradingGenerator
from scenario_traffic import (
    MINUTE, DAY,
    Generated, assert_events_valid, busy, drained_run, episodes,
    recorded_fixtures,
)

T0 = 1_700_000_000_000
USD_PER_BASE = {"USD": 1.0, "GBP": 1.27}


# Three days of trades, then an empty day that drains the episodes still running.
run = drained_run(T0, 3 * DAY, DAY)
generated, rows = recorded_fixtures(ForexTradingGenerator, run)


def usd(event: Event) -> float:
    return event["amount"] * USD_PER_BASE[event["currency"]]


def washed(row: Emitted, others: list[Emitted]) -> bool:
    """Is there an opposite leg: same pair and counterparty, size within 1%, within 5 minutes?"""
    e = row.event
    return any(
        o.event["side"] != e["side"] and o.event["currency_pair"] == e["currency_pair"]
        and o.event["counterparty"] == e["counterparty"]
        and abs(o.timestamp_ms - row.timestamp_ms) <= 5 * MINUTE
        and abs(o.event["amount"] - e["amount"]) <= 0.01 * e["amount"]
        for o in others
    )


def test_every_event_validates(rows: list[Emitted]) -> None:
    assert_events_valid("forex_trading", rows)


def test_prices_and_volatility_are_realistic_per_pair(rows: list[Emitted]) -> None:
    levels = {"USD/EUR": (0.85, 1.0), "USD/JPY": (135.0, 165.0), "GBP/USD": (1.15, 1.4)}
    vols: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        e = row.event
        low, high = levels[e["currency_pair"]]
        assert low <= e["price"] <= high
        assert e["currency"] == e["currency_pair"][:3]
        vols[e["currency_pair"]].append(e["volatility"])
    assert median(vols["USD/EUR"]) < median(vols["USD/JPY"])
    assert all(0.2 < median(v) < 1.0 for v in vols.values())


def test_position_spike_far_above_the_traders_own_baseline(generated: Generated) -> None:
    rows = generated[1]
    background: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.pattern is None:
            background[row.key].append(usd(row.event))
    found = episodes(generated, "position_spike")
    assert len(found) >= 10
    spikes, one_sided = [], []
    for episode in found:
        sides = [row.event["side"] for row in episode]
        assert len(episode) >= 4
        assert episode[-1].timestamp_ms - episode[0].timestamp_ms <= 60 * MINUTE
        assert len({row.event["currency_pair"] for row in episode}) == 1
        one_sided.append(max(sides.count("buy"), sides.count("sell")) / len(sides))
        history = background[episode[0].key]
        if len(history) >= 5:
            spikes += [usd(row.event) / median(history) for row in episode]
    spikes.sort()
    assert len(spikes) >= 30 and spikes[len(spikes) // 20] >= 3.0 and median(spikes) >= 6.0
    assert median(one_sided) >= 0.75  # building a position, not trading around one
    # ... yet most are sizes other traders deal every day: a global size rule misses them
    sizes = sorted(v for values in background.values() for v in values)
    top = sizes[int(0.999 * len(sizes))]
    labelled = [usd(row.event) for episode in found for row in episode]
    assert sum(size <= top for size in labelled) >= 0.7 * len(labelled)


def test_wash_trading_legs_offset_each_other_within_minutes(generated: Generated) -> None:
    rows = generated[1]
    found = episodes(generated, "wash_trading")
    assert len(found) >= 10
    for episode in found:
        sides = [row.event["side"] for row in episode]
        assert sides.count("buy") == sides.count("sell") >= 2
        assert len({row.event["counterparty"] for row in episode}) == 1
        assert all(washed(row, episode) for row in episode)
        net = sum(usd(r.event) * (1 if r.event["side"] == "buy" else -1) for r in episode)
        assert abs(net) <= 0.01 * sum(usd(r.event) for r in episode)
    per_trader: dict[str, list[Emitted]] = defaultdict(list)
    crowded = busy(rows)
    for row in rows:
        if row.pattern is None and row.key not in crowded:
            per_trader[row.key].append(row)
    innocent = sum(washed(row, trades) for trades in per_trader.values() for row in trades)
    assert innocent <= 0.002 * sum(map(len, per_trader.values()))
