"""FX trades: each trader sits on a desk, favours one pair, has a usual ticket (notional) and
a few regular counterparties. Prices follow a smooth seeded mid per pair (bid/ask around it);
``volatility`` is the pair's daily realised volatility in percent, drifting by regime.

Patterns (each invisible in a single event):
- ``position_spike``: within an hour, several trades mostly on one side of the trader's
  favourite pair, each many times the trader's own usual notional.
- ``wash_trading``: rapid buy/sell round trips in one pair, nearly equal sizes, with the same
  counterparty within minutes: volume without any net position.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

MINUTE = 60_000
DAY = 1_440 * MINUTE
PAIRS = np.array(["USD/EUR", "USD/JPY", "GBP/USD"])
BASE = np.array(["USD", "USD", "GBP"])  # the notional's currency
LEVEL = np.array([0.92, 151.0, 1.27])
TICK = np.array([1e5, 1e3, 1e5])  # price precision per pair (1 / smallest quoted step)
USD_PER_BASE = np.array([1.0, 1.0, 1.27])
DAILY_VOL = np.array([0.42, 0.62, 0.50])  # percent
HALF_SPREAD = np.array([0.4e-4, 0.3e-4, 0.6e-4])  # relative to mid
PERIODS = np.array([1.0, 7.0, 30.0]) * DAY  # cycles of the simulated mid
AMPLITUDE = np.array([0.002, 0.006, 0.02])
DESKS = np.array(["FX-SPOT-SH", "FX-SPOT-HK", "FX-FWD-SH", "FX-G10-LDN", "FX-EM-SG"])
MEMOS = np.array(["client flow", "hedge", "spot", "rebalance", "stop loss"])
MEMO_WEIGHTS = [0.45, 0.25, 0.15, 0.1, 0.05]
CONTACT_WEIGHTS = [0.4, 0.25, 0.15, 0.12, 0.08]  # a trader's five usual counterparties


class ForexTradingGenerator(ScenarioGenerator):
    scenario = "forex_trading"
    code = "fx"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.phase = rng.uniform(0.0, 2 * np.pi, (len(PAIRS), len(PERIODS)))
        self.regime = rng.uniform(0.0, 2 * np.pi)  # volatility regimes move all pairs together
        self.desk = rng.choice(len(DESKS), n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
        self.favourite = rng.choice(len(PAIRS), n, p=[0.45, 0.3, 0.25])
        self.ticket = rng.lognormal(np.log(2e6), 1.1, n).clip(2.5e5)  # usual notional, in USD
        self.contacts = rng.integers(0, self.pools.size, (n, len(CONTACT_WEIGHTS)))

    def _quote(self, pair: np.ndarray, times_ms: np.ndarray, buy: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Dealt price (ask for buys, bid for sells) and daily volatility at those times."""
        angle = 2 * np.pi * times_ms.astype(np.float64)[:, None] / PERIODS + self.phase[pair]
        mid = LEVEL[pair] * np.exp((AMPLITUDE * np.sin(angle)).sum(axis=1))
        noise = self.rng.normal(0.0, 0.5e-4, len(pair))
        price = mid * (1.0 + np.where(buy, 1.0, -1.0) * HALF_SPREAD[pair] + noise)
        regime = np.exp(0.3 * np.sin(2 * np.pi * times_ms / PERIODS[1] + self.regime))
        vol = DAILY_VOL[pair] * regime * self.rng.lognormal(0.0, 0.05, len(pair))
        return np.round(price * TICK[pair]) / TICK[pair], np.round(vol, 3).clip(0, 5)

    @staticmethod
    def _notional(usd: np.ndarray, pair: np.ndarray) -> np.ndarray:
        """USD-equivalent size to a round notional in the pair's base currency."""
        return np.round(usd / USD_PER_BASE[pair], -3).clip(1_000)

    def _trades(self, entity: np.ndarray, pair: np.ndarray, buy: np.ndarray, times: np.ndarray,
                usd: np.ndarray, contact: np.ndarray, memo: np.ndarray) -> list[Event]:
        """Assemble trade fields; shared by background and patterns so both look alike."""
        price, vol = self._quote(pair, times, buy)
        notional = self._notional(usd, pair)
        names = self.pools.pick(self.pools.companies, contact)
        return [
            {
                "amount": a, "currency": c, "currency_pair": p, "side": "buy" if b else "sell",
                "price": x, "volatility": v, "desk": d, "counterparty": cp, "memo": m,
            }
            for a, c, p, b, x, v, d, cp, m in zip(
                notional.tolist(), BASE[pair].tolist(), PAIRS[pair].tolist(), buy.tolist(),
                price.tolist(), vol.tolist(), DESKS[self.desk[entity]].tolist(), names,
                memo.tolist(), strict=True,
            )
        ]

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n = self.rng, len(entities)
        pair = np.where(rng.random(n) < 0.7, self.favourite[entities], rng.integers(0, 3, n))
        usd = self.ticket[entities] * rng.lognormal(0.0, 0.5, n)
        contact = self.contacts[entities, rng.choice(len(CONTACT_WEIGHTS), n, p=CONTACT_WEIGHTS)]
        return self._trades(entities, pair, rng.random(n) < 0.5, timestamps_ms, usd, contact,
                            rng.choice(MEMOS, n, p=MEMO_WEIGHTS))

    def _position_spike(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, k = self.rng, int(self.rng.integers(4, 9))
        offsets = np.sort(rng.integers(0, 60 * MINUTE, k))
        side = rng.random() < 0.5
        buy = np.where(rng.random(k) < 0.85, side, not side)
        usd = self.ticket[entity] * rng.uniform(5.0, 12.0, k)
        contact = self.contacts[entity, rng.integers(0, len(CONTACT_WEIGHTS), k)]
        trades = self._trades(np.full(k, entity), np.full(k, self.favourite[entity]), buy,
                              t0 + offsets, usd, contact, rng.choice(MEMOS[1:3], k))
        return list(zip(offsets.tolist(), trades, strict=True))

    def _wash_trading(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, trips = self.rng, int(self.rng.integers(2, 5))
        starts = np.cumsum(rng.integers(2 * MINUTE, 10 * MINUTE, trips)) - 2 * MINUTE
        offsets = np.stack([starts, starts + rng.integers(20_000, 3 * MINUTE, trips)], 1).ravel()
        first_buy = rng.random(trips) < 0.5
        buy = np.stack([first_buy, ~first_buy], 1).ravel()
        size = self.ticket[entity] * rng.uniform(1.0, 3.0, trips)
        usd = np.stack([size, size * (1 + rng.uniform(-0.003, 0.003, trips))], 1).ravel()
        k = 2 * trips
        contact = np.full(k, self.contacts[entity, int(rng.integers(0, len(CONTACT_WEIGHTS)))])
        trades = self._trades(np.full(k, entity), np.full(k, self.favourite[entity]), buy,
                              t0 + offsets, usd, contact, np.full(k, "client flow"))
        return list(zip(offsets.tolist(), trades, strict=True))

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("position_spike", 0.0015, self._position_spike,
                    "several trades within an hour, far above the trader's usual notional"),
            Pattern("wash_trading", 0.0015, self._wash_trading,
                    "near-equal buy/sell round trips with one counterparty within minutes"),
        ]
