"""Wealth product sales: each customer has a stable age and risk tolerance (older customers
lean conservative), a usual ticket, a preferred channel and a relationship advisor, who is the
``counterparty``. A product's risk level follows its type (bond 1-2, fund 2-3, stock 3-4,
crypto 5); ``memo`` names the product and, for a switch, the holding it replaced.

Patterns (each invisible in a single event):
- ``mis_selling``: within a working day one advisor sells the same stock or crypto product
  to several elderly conservative customers (a peer pattern spread over those customers).
- ``churning``: one customer's holding is switched from product to product every day or
  two by the same advisor, shrinking by the switching fee each time.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

HOUR = 3_600_000
PRODUCTS = np.array(["bond", "fund", "stock", "crypto"])
CODE_PREFIX = ["BND", "FND", "STK", "CRY"]
RISK_FLOOR = np.array([1, 2, 3, 5])
RISK_SPREAD = np.array([1, 1, 1, 0])  # risk level = floor + 0 or this
TOLERANCES = np.array(["conservative", "balanced", "aggressive"])
MIX_CDF = np.cumsum([  # P(product type | tolerance); rows are cumulative
    [0.6, 0.335, 0.06, 0.005],
    [0.3, 0.45, 0.22, 0.03],
    [0.1, 0.3, 0.45, 0.15],
], axis=1)
CHANNELS = np.array(["branch", "online", "advisor"])
N_ADVISORS = 300
N_CODES = 400  # products per type
SWITCH_SHARE = 0.15


class WealthProductGenerator(ScenarioGenerator):
    scenario = "wealth_product"
    code = "wp"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.age = rng.normal(46.0, 15.0, n).clip(18, 95).astype(int)
        older = ((self.age - 30) / 40).clip(0, 1)
        u = rng.random(n)
        cautious, bold = 0.2 + 0.5 * older, 0.38 - 0.35 * older
        self.tolerance = np.where(u < cautious, 0, np.where(u < 1 - bold, 1, 2))
        self.ticket = rng.lognormal(np.log(60_000), 0.9, n) * (0.6 + older)
        online = rng.random(n) < 0.7 - 0.6 * older
        self.channel = np.where(online, 1, rng.choice([0, 2], n, p=[0.6, 0.4]))
        self.advisor = rng.integers(0, N_ADVISORS, n)
        self.vulnerable = np.flatnonzero((self.age >= 65) & (self.tolerance == 0))

    def _risk(self, product: np.ndarray) -> np.ndarray:
        return RISK_FLOOR[product] + RISK_SPREAD[product] * (self.rng.random(len(product)) < 0.5)

    def _code(self, product: int) -> str:
        return f"{CODE_PREFIX[product]}-{int(self.rng.integers(0, N_CODES)):04d}"

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n = self.rng, len(entities)
        tolerance = self.tolerance[entities]
        product = np.minimum((rng.random(n)[:, None] > MIX_CDF[tolerance]).sum(axis=1), 3)
        # Rebalancing is common (one sale in seven); switch proceeds are exact, new money is round.
        switch = rng.random(n) < SWITCH_SHARE
        raw = self.ticket[entities] * rng.lognormal(0.0, 0.5, n)
        amount = np.where(switch, np.round(raw, 2), np.round(raw, -2)).clip(1_000)
        channel = np.where(rng.random(n) < 0.8, self.channel[entities], rng.integers(0, 3, n))
        duty = rng.integers(0, N_ADVISORS, n)  # a tenth of sales go to the advisor on duty
        advisor = np.where(rng.random(n) < 0.9, self.advisor[entities], duty)
        names = [f"{CODE_PREFIX[p]}-{k:04d}"
                 for p, k in zip(product.tolist(), rng.integers(0, N_CODES, n).tolist(), strict=True)]
        old = [f"{CODE_PREFIX[p]}-{k:04d}" if s else None for p, k, s in zip(
            rng.integers(0, 3, n).tolist(), rng.integers(0, N_CODES, n).tolist(), switch.tolist(), strict=True)]
        return [
            {
                "amount": a, "currency": "CNY", "product_type": p, "product_risk_level": r,
                "investor_age": age, "risk_tolerance": t, "channel": c,
                "counterparty": f"ADV-{adv:04d}", "memo": f"{name}; switch from {o}" if o else name,
            }
            for a, p, r, age, t, c, adv, name, o in zip(
                amount.tolist(), PRODUCTS[product].tolist(), self._risk(product).tolist(),
                self.age[entities].tolist(), TOLERANCES[tolerance].tolist(),
                CHANNELS[channel].tolist(), advisor.tolist(), names, old, strict=True,
            )
        ]

    def _customer(self, entity: int) -> Event:
        """The profile fields the customer's every event carries."""
        return {"currency": "CNY", "investor_age": int(self.age[entity]),
                "risk_tolerance": str(TOLERANCES[self.tolerance[entity]])}

    def _mis_selling(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, advisor = self.rng, int(self.advisor[entity])
        pool = self.vulnerable if len(self.vulnerable) >= 3 else np.arange(self.n_entities)
        victims = rng.choice(pool, min(int(rng.integers(3, 7)), len(pool)), replace=False)
        product = 2 if rng.random() < 0.8 else 3  # one stock or crypto product, pushed to all
        code, risk = self._code(product), int(RISK_FLOOR[product] + RISK_SPREAD[product])
        offsets = np.sort(rng.integers(0, 8 * HOUR, len(victims)))
        amounts = np.round(self.ticket[victims] * rng.uniform(0.8, 2.5, len(victims)), -2)
        channels = rng.choice(CHANNELS[[0, 2]], len(victims))  # sold face to face
        return [
            (offset, {
                **self._customer(victim), "_entity": victim, "product_type": str(PRODUCTS[product]),
                "product_risk_level": risk, "channel": channel, "amount": amount,
                "counterparty": f"ADV-{advisor:04d}", "memo": code,
            })
            for offset, victim, amount, channel in zip(offsets.tolist(), victims.tolist(),
                                                       amounts.clip(1_000).tolist(),
                                                       channels.tolist(), strict=True)
        ]

    def _churning(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, k = self.rng, int(self.rng.integers(4, 8))
        tolerance = int(self.tolerance[entity])
        products = np.minimum((rng.random(k)[:, None] > MIX_CDF[tolerance]).sum(axis=1), 2)
        codes = [self._code(p) for p in products.tolist()]
        held = [self._code(int(rng.integers(0, 3)))] + codes[:-1]
        amounts = self.ticket[entity] * rng.uniform(1.0, 3.0) * np.cumprod(
            1.0 - rng.uniform(0.01, 0.02, k))  # each switch pays a fee
        offsets = np.cumsum(rng.integers(12 * HOUR, 48 * HOUR, k)) - 12 * HOUR
        return [
            (offset, {
                **self._customer(entity), "product_type": str(PRODUCTS[p]),
                "product_risk_level": r, "channel": "advisor", "amount": round(a, 2),
                "counterparty": f"ADV-{int(self.advisor[entity]):04d}",
                "memo": f"{code}; switch from {old}",
            })
            for offset, p, r, a, code, old in zip(
                offsets.tolist(), products.tolist(), self._risk(products).tolist(),
                amounts.tolist(), codes, held, strict=True)
        ]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("mis_selling", 0.0012, self._mis_selling,
                    "one advisor sells high-risk products to several elderly conservative clients"),
            Pattern("churning", 0.0012, self._churning,
                    "a holding switched product to product within days by the same advisor"),
        ]
