"""ATM and online banking: each account has a home city, its own devices, a home IP and payees.

Patterns (each invisible in a single event):
- ``credential_stuffing_takeover``: failed logins with rising attempt numbers from an
  unknown device and IP (in a country customers log in from), then a success and,
  minutes later, a transfer to a new payee.

Legitimate look-alike (unlabelled): ``forgotten_password``, a customer retrying on their
own device, attempt numbers rising the same way, then in (or locked out). Alone, a
login with attempt 6 says nothing; whose device it is and what follows does.
- ``atm_cash_out``: withdrawals at ATMs in several cities within an hour (cloned cards),
  each within the per-withdrawal limit, together close to the daily cap.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

MINUTE = 60_000
DAY = 86_400_000
CITIES = np.array(["BJ", "SH", "GZ", "SZ", "HZ", "CD", "WH", "NJ", "XA", "CQ", "TJ", "SU"])
CITY_WEIGHTS = np.array([0.14, 0.14, 0.1, 0.1, 0.08, 0.08, 0.07, 0.07, 0.06, 0.06, 0.05, 0.05])
ATMS_PER_CITY = 800
WITHDRAWAL_LIMIT = 5_000.0  # CNY per withdrawal
DAILY_CAP = 20_000.0  # CNY of ATM cash per card and day
LOGIN_FAILURE = 0.05
TABLET, DESKTOP = 2, 3  # columns of device_ids; columns 0 and 1 are phones


class AtmNetbankGenerator(ScenarioGenerator):
    scenario = "atm_netbank"
    code = "an"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.city = rng.choice(len(CITIES), n, p=CITY_WEIGHTS)
        self.home_atm = self.city * ATMS_PER_CITY + rng.integers(0, ATMS_PER_CITY, n)
        self.atm_share = rng.beta(2.0, 8.0, n)  # how much the account still lives on cash
        self.app_share = (1.0 - self.atm_share) * rng.beta(5.0, 2.0, n)
        self.phones = rng.integers(1, 3, n)
        self.tablet_share = np.where(rng.random(n) < 0.15, 0.3, 0.0)
        self.home = np.where(rng.random(n) < 0.97, "CN", rng.choice(["HK", "MO", "SG"], n))
        self.ip_index = rng.integers(0, self.pools.size, n)
        self.cash = rng.lognormal(np.log(800.0), 0.5, n)  # usual withdrawal, CNY
        self.transfer = rng.lognormal(np.log(2_000.0), 0.9, n)  # usual transfer, CNY
        # Opaque ids, so a stranger's device or payee looks like any other until history says no.
        self.device_ids = np.array([f"D{x:010x}" for x in rng.integers(0, 2**40, n * 4).tolist()],
                                   dtype=object).reshape(n, 4)
        self.payees = rng.integers(0, 10**17, (n, 8))
        self.payee_count = rng.integers(2, 9, n)
        atm = np.arange(len(CITIES) * ATMS_PER_CITY)
        self.atm_ids = np.array([f"ATM-{CITIES[i // ATMS_PER_CITY]}-{i % ATMS_PER_CITY:04d}"
                                 for i in atm.tolist()], dtype=object)
        self.atm_ips = np.array([f"10.{20 + i // ATMS_PER_CITY}.{i % ATMS_PER_CITY // 250}."
                                 f"{i % 250 + 1}" for i in atm.tolist()], dtype=object)
        self.ipv4 = np.array(self.pools.ipv4, dtype=object)

    def _atm_of(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> np.ndarray:
        """Mostly the account's local ATM, else one in its city; on a travel day (a stable
        5% of account-days) every ATM is in that day's destination city."""
        rng, n = self.rng, len(entities)
        mix = (entities * 2_654_435_761 + timestamps_ms // DAY * 40_503) % 1_000_003
        city = np.where(mix % 100 < 5, mix // 100 % len(CITIES), self.city[entities])
        local = city * ATMS_PER_CITY + rng.integers(0, ATMS_PER_CITY, n)
        at_home = (rng.random(n) < 0.6) & (city == self.city[entities])
        return np.where(at_home, self.home_atm[entities], local)

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n, e = self.rng, len(entities), entities
        u = rng.random(n)
        atm = u < self.atm_share[e]
        app = ~atm & (u < self.atm_share[e] + self.app_share[e])
        slot = np.where(app, np.where(rng.random(n) < self.tablet_share[e], TABLET,
                                      rng.integers(0, self.phones[e])), DESKTOP)
        atm_at = self._atm_of(e, timestamps_ms)
        method = np.where(atm, "ATM", np.where(app, "MobileApp", "Netbank"))
        kind = np.where(atm, "atm", np.where(slot == DESKTOP, "desktop",
                                             np.where(slot == TABLET, "tablet", "mobile")))
        device = np.where(atm, self.atm_ids[atm_at], self.device_ids[e, slot])
        roaming = rng.random(n) < np.where(app, 0.45, 0.08)  # carrier NAT, office, cafe
        ip = np.where(roaming, self.ipv4[rng.integers(0, self.pools.size, n)],
                      self.ipv4[self.ip_index[e]])
        ip = np.where(atm, self.atm_ips[atm_at], ip)
        country = np.where(~atm & (rng.random(n) < 0.01), "JP", self.home[e])
        country = np.where(atm, "CN", country)
        second = rng.random(n) < np.where(atm, 0.25, 0.35)  # balance inquiry / transfer
        action = np.where(atm, np.where(second, "balance_inquiry", "withdrawal"),
                          np.where(second, "transfer", "login"))
        cash = np.round(self.cash[e] * rng.lognormal(0.0, 0.5, n), -2)  # notes of 100
        cash = np.clip(cash, 100.0, WITHDRAWAL_LIMIT)
        sent = np.round(self.transfer[e] * rng.lognormal(0.0, 0.8, n), 2).clip(1.0, 500_000.0)
        amount = np.where(action == "withdrawal", cash, np.where(action == "transfer", sent, np.array(None)))
        retries = np.where(action == "login", rng.geometric(0.85, n), rng.geometric(0.97, n))
        attempts = np.minimum(retries, 100)  # a typo or two; ATM PINs rarely need a second go
        success = rng.random(n) > np.where(action == "login", LOGIN_FAILURE, 0.015)
        counterparty = np.where(atm, self.atm_ids[atm_at], np.array(None))
        transfer = np.flatnonzero(action == "transfer")
        counterparty[transfer] = self._payees(e[transfer])
        return [
            {
                "access_method": m, "device_type": k, "device_id": d, "ip_address": i,
                "country": c, "action": act, "login_attempts": t, "success": s,
                "amount": amt, "currency": None if amt is None else "CNY", "counterparty": p,
            }
            for m, k, d, i, c, act, t, s, amt, p in zip(
                method.tolist(), kind.tolist(), device.tolist(), ip.tolist(), country.tolist(),
                action.tolist(), attempts.tolist(), success.tolist(), amount.tolist(),
                counterparty.tolist(), strict=True,
            )
        ]

    def _payees(self, entities: np.ndarray) -> list[str]:
        """A known payee of each account, now and then a first-time one (new landlord, shop)."""
        rng, n = self.rng, len(entities)
        known = self.payees[entities, rng.integers(0, self.payee_count[entities])]
        fresh = np.where(rng.random(n) < 0.04, rng.integers(0, 10**17, n), known)
        return [f"62{x:017d}" for x in fresh.tolist()]

    def _stranger(self) -> Event:
        """An attacker's device and exit IP: unknown to the account, yet drawn like any
        customer's (a domestic proxy, a country some other account logs in from)."""
        rng = self.rng
        desktop = bool(rng.random() < 0.5)
        other = int(rng.integers(0, self.n_entities))
        return {
            "access_method": "Netbank" if desktop else "MobileApp",
            "device_type": "desktop" if desktop else "mobile",
            "device_id": f"D{int(rng.integers(0, 2**40)):010x}",
            "ip_address": self.pools.ipv4[int(rng.integers(0, self.pools.size))],
            "country": "JP" if rng.random() < 0.01 else str(self.home[other]),
        }

    def _credential_stuffing_takeover(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Each login looks like a typo; the run of them from one new device is the tell."""
        rng, who = self.rng, self._stranger()
        failures = int(rng.integers(3, 9))
        events, offset = [], 0
        for attempt in range(1, failures + 2):
            events.append((offset, {**who, "action": "login", "login_attempts": attempt,
                                    "success": attempt > failures, "amount": None,
                                    "currency": None, "counterparty": None}))
            offset += int(rng.integers(4_000, 40_000))
        payee = f"62{int(rng.integers(0, 10**17)):017d}"
        for _ in range(int(rng.integers(1, 3))):
            offset += int(rng.integers(MINUTE, 8 * MINUTE))
            ceiling = rng.uniform(15_000.0, 49_900.0)  # stay under the app's daily limit
            amount = min(float(self.transfer[entity] * rng.uniform(5, 15)), ceiling)
            events.append((offset, {**who, "action": "transfer", "login_attempts": 1,
                                    "success": True, "amount": round(amount, 2),
                                    "currency": "CNY", "counterparty": payee}))
        return events

    def _atm_cash_out(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Ordinary withdrawals one by one; no single card holder crosses cities this fast."""
        rng = self.rng
        count = int(rng.integers(5, 9))
        shares = rng.dirichlet(np.full(count, 8.0)) * DAILY_CAP * rng.uniform(0.85, 1.0)
        amounts = np.clip(np.floor(shares / 100.0) * 100.0, 1_000.0, WITHDRAWAL_LIMIT)
        cities = rng.choice(len(CITIES), int(rng.integers(3, min(count, 5) + 1)), replace=False)
        where = np.concatenate([cities, rng.choice(cities, count - len(cities))])
        atms = where * ATMS_PER_CITY + rng.integers(0, ATMS_PER_CITY, count)
        offsets = np.sort(rng.integers(0, 55 * MINUTE, count))
        return [
            (offset, {"access_method": "ATM", "device_type": "atm", "device_id": self.atm_ids[atm],
                      "ip_address": self.atm_ips[atm], "country": "CN", "action": "withdrawal",
                      "login_attempts": 1, "success": True, "amount": amount, "currency": "CNY",
                      "counterparty": self.atm_ids[atm]})
            for offset, atm, amount in zip(offsets.tolist(), rng.permutation(atms).tolist(),
                                           amounts.tolist(), strict=True)
        ]

    def _forgotten_password(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """A customer's own retries: the stuffing's logins from a known device, no transfer."""
        rng = self.rng
        slot = int(rng.integers(0, self.phones[entity])) if rng.random() < 0.6 else DESKTOP
        own = {"access_method": "MobileApp" if slot != DESKTOP else "Netbank",
               "device_type": "mobile" if slot != DESKTOP else "desktop",
               "device_id": str(self.device_ids[entity, slot]),
               "ip_address": self.pools.ipv4[int(self.ip_index[entity])], "country": str(self.home[entity])}
        tries = int(rng.integers(3, 13))
        locked = rng.random() < 0.2
        events, offset = [], 0
        for attempt in range(1, tries + 1):
            events.append((offset, {**own, "action": "login", "login_attempts": attempt,
                                    "success": attempt == tries and not locked, "amount": None,
                                    "currency": None, "counterparty": None}))
            offset += int(rng.integers(4_000, 40_000))
        return events

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("credential_stuffing_takeover", 0.0013, self._credential_stuffing_takeover,
                    "failed logins from a new device, a success, then a transfer to a new payee"),
            Pattern("atm_cash_out", 0.0012, self._atm_cash_out,
                    "withdrawals near the daily cap at ATMs in several cities within an hour"),
            Pattern("forgotten_password", 0.012, self._forgotten_password,
                    "a customer's own retries on a known device: legitimate", benign=True, order_only=False),
        ]
