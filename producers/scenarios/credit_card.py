"""Card authorisations: each card has a home country, a usual ticket size and its devices.

Patterns (each invisible in a single event):
- ``card_testing``: a burst of small purchases at distinct merchants from a device the
  card never used, then purchases several times the card's usual ticket.
- ``cash_advance_spike``: several cash advances within two hours, far above the
  card's habit (most cards never take one).
- ``account_takeover``: a new device buys something, then moves a large balance.

Pattern events draw every field from the legitimate traffic's own distributions:
merchant codes and countries from the same mixes, device ids in the same scheme, small
tickets as common as coffee and transit fares are, cash advances at the ATMs where
cards take cash. A fraudster's device and country are those of some other customer; the
tell is that *this* card never used them, and the speed and order of the events.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

MINUTE = 60_000
MCC = np.array(["5411", "5812", "5541", "5311", "5912", "4111", "5814", "5999", "5732", "7011",
                "5816", "5944"])
MCC_WEIGHTS = np.array([0.2, 0.17, 0.11, 0.1, 0.08, 0.08, 0.1, 0.07, 0.03, 0.02, 0.03, 0.01])
SMALL_MCC = np.array(["4111", "5814", "5999", "5411", "5816"])  # fares, snacks, apps: small tickets
SMALL_WEIGHTS = np.array([0.3, 0.3, 0.15, 0.15, 0.1])
SMALL_SHARE = 0.12  # purchases of 1-30 CNY
CASH_MCC, TRANSFER_MCC = "6011", "4829"
DEVICES = np.array(["mobile", "desktop", "tablet"])
DEVICE_WEIGHTS = [0.7, 0.2, 0.1]
TRAVEL = np.array(["JP", "TH", "FR", "US"])
NEW_DEVICE_SHARE = 0.03


class CreditCardGenerator(ScenarioGenerator):
    scenario = "credit_card"
    code = "cc"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.ticket = rng.lognormal(np.log(280.0), 0.6, n)  # usual amount, CNY
        self.home = np.where(rng.random(n) < 0.93, "CN", rng.choice(["HK", "SG", "US"], n))
        self.device_kind = rng.choice(DEVICES, n, p=DEVICE_WEIGHTS)
        self.ip_index = rng.integers(0, self.pools.size, n)
        self.merchant_count = 20_000
        # A third of cards take cash now and then; the rest never do.
        self.cash_share = np.where(rng.random(n) < 0.3, rng.uniform(0.05, 0.2, n), 0.0)
        self.transfer_share = np.where(rng.random(n) < 0.4, rng.uniform(0.01, 0.06, n), 0.0)

    def _merchant(self, indices: np.ndarray) -> list[str]:
        return [f"M-{i:06d}" for i in indices.tolist()]

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n, e = self.rng, len(entities), entities
        u = rng.random(n)
        cash = u < self.cash_share[e]
        transfer = ~cash & (u < self.cash_share[e] + self.transfer_share[e])
        small = ~cash & ~transfer & (rng.random(n) < SMALL_SHARE)
        amount = self._amount(e, small, cash, transfer)
        tx_type = np.where(cash, "cash_advance", np.where(transfer, "balance_transfer", "purchase"))
        mcc = np.where(small, rng.choice(SMALL_MCC, n, p=SMALL_WEIGHTS), rng.choice(MCC, n, p=MCC_WEIGHTS))
        mcc = np.where(cash, CASH_MCC, np.where(transfer, TRANSFER_MCC, mcc))
        country = self._country(self.home[e])
        merchants = self._merchant(rng.integers(0, self.merchant_count, n))
        atms = self._atm(n)
        payee = np.where(cash, np.array(atms, dtype=object), np.array(merchants, dtype=object))
        ips = self.pools.pick(self.pools.ipv4, self.ip_index[e])
        return [
            {
                "amount": a, "currency": "CNY", "transaction_type": t, "device_type": k,
                "device_id": f"D-{d:07d}", "merchant_category": m, "country": c,
                "ip_address": ip, "counterparty": cp,
            }
            for a, t, k, d, m, c, ip, cp in zip(
                amount.tolist(), tx_type.tolist(), self.device_kind[e].tolist(), self._device(e).tolist(),
                mcc.tolist(), country.tolist(), ips, payee.tolist(), strict=True,
            )
        ]

    def _device(self, entities: np.ndarray) -> np.ndarray:
        """The card's own device, or now and then one it never used (a new phone, a shop's
        tablet, a partner's laptop): a first-seen device is not fraud by itself."""
        fresh = self.rng.random(len(entities)) < NEW_DEVICE_SHARE
        return np.where(fresh, self.rng.integers(self.n_entities, 10**7, len(entities)), entities)

    def _amount(self, entities: np.ndarray, small: np.ndarray, cash: np.ndarray,
                transfer: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Legitimate amounts: the card's ticket, small fares, cash advances and balance
        transfers at a few times the ticket; ``scale`` multiplies the card's habit."""
        rng, n = self.rng, len(entities)
        habit = self.ticket[entities] * scale
        amount = habit * rng.lognormal(0.0, 0.7, n)
        amount = np.where(small, rng.uniform(1.0, 30.0, n), amount)
        amount = np.where(cash, habit * rng.lognormal(np.log(3.0), 0.5, n), amount)
        amount = np.where(transfer, habit * rng.lognormal(np.log(8.0), 0.8, n), amount)
        return np.round(amount, 2).clip(1.0)

    def _country(self, home: np.ndarray) -> np.ndarray:
        """Home, or on 1% of events a trip abroad."""
        travel = self.rng.random(len(home)) < 0.01
        return np.where(travel, self.rng.choice(TRAVEL, len(home)), home)

    def _atm(self, n: int) -> list[str]:
        """The cash machine of a cash advance (legitimate or not: the same network)."""
        return [f"ATM-{i:05d}" for i in self.rng.integers(0, 5_000, n).tolist()]

    def _stranger(self) -> dict[str, str]:
        """A device, address and country another customer could have: some other card's."""
        rng = self.rng
        other = int(rng.integers(0, self.n_entities))
        return {
            "device_type": str(rng.choice(DEVICES, p=DEVICE_WEIGHTS)),
            "device_id": f"D-{int(rng.integers(self.n_entities, 10**7)):07d}",
            "ip_address": self.pools.ipv4[int(rng.integers(0, self.pools.size))],
            "country": str(self._country(self.home[[other]])[0]),
        }

    def _event(self, who: dict[str, str], amount: float, tx_type: str, mcc: str, counterparty: str) -> Event:
        return {**who, "amount": round(float(amount), 2), "currency": "CNY", "transaction_type": tx_type,
                "merchant_category": mcc, "counterparty": counterparty}

    def _card_testing(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, who = self.rng, self._stranger()
        probes = int(rng.integers(3, 7))
        events = []
        offset = 0
        for merchant in rng.choice(self.merchant_count, probes, replace=False).tolist():
            offset += int(rng.integers(20_000, 3 * MINUTE))
            events.append((offset, self._event(who, rng.uniform(1.0, 30.0), "purchase",
                                               str(rng.choice(SMALL_MCC, p=SMALL_WEIGHTS)), f"M-{merchant:06d}")))
        for _ in range(int(rng.integers(1, 3))):
            offset += int(rng.integers(2 * MINUTE, 20 * MINUTE))
            amount = self.ticket[entity] * rng.lognormal(np.log(4.0), 0.5)
            events.append((offset, self._event(who, amount, "purchase", str(rng.choice(MCC, p=MCC_WEIGHTS)),
                                               self._merchant(rng.integers(0, self.merchant_count, 1))[0])))
        return events

    def _cash_advance_spike(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng = self.rng
        own = {"device_type": str(self.device_kind[entity]), "device_id": f"D-{entity:07d}",
               "ip_address": self.pools.ipv4[int(self.ip_index[entity])],
               "country": str(self.home[entity])}
        offsets = np.sort(rng.integers(0, 120 * MINUTE, int(rng.integers(4, 9))))
        return [
            (int(offset), self._event(own, self.ticket[entity] * rng.lognormal(np.log(4.0), 0.5),
                                      "cash_advance", CASH_MCC, atm))
            for offset, atm in zip(offsets.tolist(), self._atm(len(offsets)), strict=True)
        ]

    def _account_takeover(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, who = self.rng, self._stranger()
        scale = float(self.ticket[entity])
        merchants = self._merchant(rng.integers(0, self.merchant_count, 2))
        return [
            (0, self._event(who, scale * rng.lognormal(0.0, 0.7), "purchase",
                            str(rng.choice(MCC, p=MCC_WEIGHTS)), merchants[0])),
            (int(rng.integers(MINUTE, 15 * MINUTE)), self._event(
                who, scale * rng.lognormal(np.log(20.0), 0.5), "balance_transfer", TRANSFER_MCC, merchants[1])),
        ]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("card_testing", 0.0015, self._card_testing,
                    "small probes at distinct merchants from a new device, then large purchases"),
            Pattern("cash_advance_spike", 0.0008, self._cash_advance_spike,
                    "cash advances far above the card's habit within two hours"),
            Pattern("account_takeover", 0.0015, self._account_takeover,
                    "a new device buys, then moves a large balance"),
        ]
