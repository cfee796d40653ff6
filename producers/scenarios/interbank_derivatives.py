"""Interbank lending and derivatives: each counterparty bank has a usual deal size, a share of
USD business, a credit spread (paid on loans) and a SWIFT-like code. Rates (percent) sit on a
yield curve per currency and tenor that shifts slowly in time, so "normal" is relative.

Patterns (each invisible in a single event):
- ``exposure_concentration``: within a few hours many deals with one bank, each only a few
  times its usual size, pile up notional far above its norm.
- ``off_market_rate``: deals priced far from where peers trade the same tenor that day (a
  transfer of value); the rate alone is one the curve shows at another tenor.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

HOUR = 3_600_000
DAY = 24 * HOUR
TENORS = np.array([1, 7, 14, 30, 90, 180, 365, 730, 1825])
CURVES = np.array([
    [1.50, 1.75, 1.90, 2.00, 2.15, 2.30, 2.45, 2.80, 3.50],  # CNY
    [5.31, 5.32, 5.33, 5.33, 5.30, 5.15, 4.85, 4.50, 4.20],  # USD (inverted)
])
CURVE_LOW, CURVE_HIGH = CURVES.min(axis=1), CURVES.max(axis=1)
CURRENCIES = np.array(["CNY", "USD"])
USD_CNY = 7.2
TYPES = np.array(["swap", "option", "future", "loan"])
TYPE_WEIGHTS = [0.35, 0.1, 0.15, 0.4]
TENOR_CDF = np.cumsum([  # P(tenor | type), cumulative along the tenors
    [0.0, 0.0, 0.0, 0.0, 0.1, 0.15, 0.3, 0.2, 0.25],  # swaps: 3M to 5Y
    [0.0, 0.0, 0.0, 0.2, 0.3, 0.25, 0.25, 0.0, 0.0],  # options: 1M to 1Y
    [0.0, 0.0, 0.0, 0.0, 0.4, 0.35, 0.25, 0.0, 0.0],  # futures: quarterly contracts
    [0.35, 0.3, 0.1, 0.12, 0.08, 0.05, 0.0, 0.0, 0.0],  # loans: mostly overnight and 7D
], axis=1)
DESKS = np.array(["RATES-SH", "OPTIONS-SH", "FUTURES-SH", "MONEY-MKT-SH"])  # by type
MEMOS = np.array([  # by type, then currency
    ["IRS FR007", "IRS SOFR"], ["swaption", "swaption"], ["CGB future", "SOFR future"],
    ["interbank lending", "interbank lending"],
])


class InterbankDerivativesGenerator(ScenarioGenerator):
    scenario = "interbank_derivatives"
    code = "ib"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.size = rng.lognormal(np.log(3e8), 1.0, n).clip(1e7)  # usual deal, CNY
        self.usd_share = rng.beta(1.0, 6.0, n)
        self.spread = np.abs(rng.normal(0.0, 0.08, n)).clip(0, 0.3)  # credit spread, points
        self.shift_phase = rng.uniform(0.0, 2 * np.pi, 2)  # the whole curve moves, for all
        letters = rng.integers(0, 26, (n, 4)) + ord("A")
        self.bic = [bytes(row).decode() + "CNBJ" for row in letters.astype(np.uint8).tolist()]

    def _curve(self, currency: np.ndarray, tenor: np.ndarray, times_ms: np.ndarray) -> np.ndarray:
        """Market rate per currency and tenor index at those times (a slow parallel shift)."""
        days = times_ms.astype(np.float64) / DAY
        shift = (0.10 * np.sin(2 * np.pi * days / 30 + self.shift_phase[0])
                 + 0.03 * np.sin(2 * np.pi * days / 7 + self.shift_phase[1]))
        return CURVES[currency, tenor] + shift

    def _deals(self, entity: np.ndarray, kind: np.ndarray, times_ms: np.ndarray,
               cny: np.ndarray, off: np.ndarray) -> list[Event]:
        """Deal fields for CNY-equivalent sizes; ``off`` is the rate's departure from market."""
        rng, n = self.rng, len(entity)
        tenor = np.minimum((rng.random(n)[:, None] > TENOR_CDF[kind]).sum(axis=1), 8)
        currency = (rng.random(n) < self.usd_share[entity]).astype(int)
        notional = np.round(cny / np.where(currency == 1, USD_CNY, 1.0), -5).clip(1e6)
        market = self._curve(currency, tenor, times_ms)
        # an off-market deal ignores the bank's spread and stays inside the curve's range
        outside = (market + off < CURVE_LOW[currency]) | (market + off > CURVE_HIGH[currency])
        off = np.where(outside, -off, off)
        spread = np.where((kind == 3) & (off == 0), self.spread[entity], 0.0)
        rate = (market + spread + rng.normal(0.0, 0.02, n) + off).clip(0.1)
        direction = np.where(rng.random(n) < 0.5, "pay", "receive")
        return [
            {
                "amount": a, "currency": c, "derivative_type": k, "interest_rate": r,
                "tenor_days": t, "direction": d, "desk": desk, "counterparty": self.bic[e],
                "memo": f"{m} {t}D",
            }
            for a, c, k, r, t, d, desk, e, m in zip(
                notional.tolist(), CURRENCIES[currency].tolist(), TYPES[kind].tolist(),
                np.round(rate, 4).tolist(), TENORS[tenor].tolist(), direction.tolist(),
                DESKS[kind].tolist(), entity.tolist(), MEMOS[kind, currency].tolist(), strict=True,
            )
        ]

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n = self.rng, len(entities)
        kind = rng.choice(len(TYPES), n, p=TYPE_WEIGHTS)
        cny = self.size[entities] * rng.lognormal(0.0, 0.7, n)
        return self._deals(entities, kind, timestamps_ms, cny, np.zeros(n))

    def _planned(self, entity: int, t0: int, offsets: np.ndarray, kind: np.ndarray,
                 cny: np.ndarray, off: np.ndarray) -> list[tuple[int, Event]]:
        deals = self._deals(np.full(len(offsets), entity), kind, t0 + offsets, cny, off)
        return list(zip(offsets.tolist(), deals, strict=True))

    def _exposure_concentration(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, k = self.rng, int(self.rng.integers(6, 13))
        offsets = np.sort(rng.integers(0, int(rng.integers(1, 7)) * HOUR, k))
        kind = rng.choice([0, 3], k, p=[0.4, 0.6])
        cny = self.size[entity] * rng.uniform(2.0, 5.0, k)
        return self._planned(entity, t0, offsets, kind, cny, np.zeros(k))

    def _off_market_rate(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, k = self.rng, int(self.rng.integers(1, 4))
        offsets = np.sort(rng.integers(0, 4 * HOUR, k))
        kind = rng.choice([0, 3], k)
        cny = self.size[entity] * rng.lognormal(0.0, 0.4, k)
        off = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0, k)
        return self._planned(entity, t0, offsets, kind, cny, off)

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("exposure_concentration", 0.001, self._exposure_concentration,
                    "many deals with one bank within hours, notional far above its norm"),
            Pattern("off_market_rate", 0.004, self._off_market_rate,
                    "deals priced far from the rate peers trade at that tenor"),
        ]
