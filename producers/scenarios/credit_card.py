"""Card authorisations: each card has a home country, a usual ticket size and its devices.

Patterns (each invisible in a single event):
- ``card_testing``: a burst of tiny online purchases at distinct merchants from an
  unknown device, then large purchases at electronics or jewellery merchants.
- ``cash_advance_spike``: several cash advances within two hours, far above the
  card's habit (most cards never take one).
- ``account_takeover``: a new device in a foreign country moves a large balance.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

MINUTE = 60_000
MCC = np.array(["5411", "5812", "5541", "5311", "5912", "4111", "5814", "5999", "5732", "7011"])
MCC_WEIGHTS = np.array([0.22, 0.18, 0.12, 0.1, 0.08, 0.08, 0.1, 0.06, 0.03, 0.03])
TX_TYPES = np.array(["purchase", "cash_advance", "balance_transfer"])
DEVICES = np.array(["mobile", "desktop", "tablet"])
FOREIGN = ["RU", "NG", "BR", "UA", "VN", "RO"]


class CreditCardGenerator(ScenarioGenerator):
    scenario = "credit_card"
    code = "cc"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.ticket = rng.lognormal(np.log(280.0), 0.6, n)  # usual amount, CNY
        self.home = np.where(rng.random(n) < 0.93, "CN", rng.choice(["HK", "SG", "US"], n))
        self.device_kind = rng.choice(DEVICES, n, p=[0.7, 0.2, 0.1])
        self.ip_index = rng.integers(0, self.pools.size, n)
        self.merchant_count = 20_000

    def _merchant(self, indices: np.ndarray) -> list[str]:
        return [f"M-{i:06d}" for i in indices.tolist()]

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n = self.rng, len(entities)
        amount = np.round(self.ticket[entities] * rng.lognormal(0.0, 0.7, n), 2).clip(1.0)
        tx_type = rng.choice(TX_TYPES, n, p=[0.96, 0.025, 0.015])
        mcc = rng.choice(MCC, n, p=MCC_WEIGHTS)
        travel = rng.random(n) < 0.01
        country = np.where(travel, rng.choice(["JP", "TH", "FR", "US"], n), self.home[entities])
        merchants = self._merchant(rng.integers(0, self.merchant_count, n))
        ips = self.pools.pick(self.pools.ipv4, self.ip_index[entities])
        kinds = self.device_kind[entities]
        return [
            {
                "amount": a, "currency": "CNY", "transaction_type": t, "device_type": k,
                "device_id": f"D-{e:07d}", "merchant_category": m, "country": c,
                "ip_address": ip, "counterparty": merchant,
            }
            for a, t, k, e, m, c, ip, merchant in zip(
                amount.tolist(), tx_type.tolist(), kinds.tolist(), entities.tolist(),
                mcc.tolist(), country.tolist(), ips, merchants, strict=True,
            )
        ]

    def _stranger(self) -> dict[str, str]:
        rng = self.rng
        return {
            "device_type": str(rng.choice(DEVICES)),
            "device_id": f"X-{int(rng.integers(0, 10**7)):07d}",
            "ip_address": self.pools.ipv4[int(rng.integers(0, self.pools.size))],
            "country": str(rng.choice(FOREIGN)),
        }

    def _card_testing(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, who = self.rng, self._stranger()
        probes = int(rng.integers(3, 7))
        events = []
        offset = 0
        for merchant in rng.choice(self.merchant_count, probes, replace=False).tolist():
            offset += int(rng.integers(20_000, 3 * MINUTE))
            events.append((offset, {
                **who, "amount": round(float(rng.uniform(1.0, 20.0)), 2), "currency": "CNY",
                "transaction_type": "purchase", "merchant_category": "5999",
                "counterparty": f"M-{merchant:06d}",
            }))
        for _ in range(int(rng.integers(1, 3))):
            offset += int(rng.integers(2 * MINUTE, 20 * MINUTE))
            events.append((offset, {
                **who, "amount": round(float(self.ticket[entity] * rng.uniform(8, 30)), 2),
                "currency": "CNY", "transaction_type": "purchase",
                "merchant_category": str(rng.choice(["5732", "5944"])),
                "counterparty": f"M-{int(rng.integers(0, self.merchant_count)):06d}",
            }))
        return events

    def _cash_advance_spike(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng = self.rng
        own = {"device_type": str(self.device_kind[entity]), "device_id": f"D-{entity:07d}",
               "ip_address": self.pools.ipv4[int(self.ip_index[entity])],
               "country": str(self.home[entity])}
        offsets = np.sort(rng.integers(0, 120 * MINUTE, int(rng.integers(4, 9))))
        return [
            (int(offset), {
                **own, "amount": round(float(self.ticket[entity] * rng.uniform(3, 8)), 2),
                "currency": "CNY", "transaction_type": "cash_advance", "merchant_category": "6011",
                "counterparty": f"ATM-{int(rng.integers(0, 5_000)):05d}",
            })
            for offset in offsets.tolist()
        ]

    def _account_takeover(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, who = self.rng, self._stranger()
        scale = float(self.ticket[entity])
        return [
            (0, {**who, "amount": round(scale * rng.uniform(0.3, 1.0), 2), "currency": "CNY",
                 "transaction_type": "purchase", "merchant_category": "5816",
                 "counterparty": f"M-{int(rng.integers(0, self.merchant_count)):06d}"}),
            (int(rng.integers(MINUTE, 15 * MINUTE)), {
                **who, "amount": round(scale * rng.uniform(20, 60), 2), "currency": "CNY",
                "transaction_type": "balance_transfer", "merchant_category": "4829",
                "counterparty": f"M-{int(rng.integers(0, self.merchant_count)):06d}"}),
        ]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("card_testing", 0.0015, self._card_testing,
                    "tiny probes at distinct merchants, then large purchases"),
            Pattern("cash_advance_spike", 0.0008, self._cash_advance_spike,
                    "cash advances far above the card's habit within two hours"),
            Pattern("account_takeover", 0.0015, self._account_takeover,
                    "new foreign device moves a large balance"),
        ]
