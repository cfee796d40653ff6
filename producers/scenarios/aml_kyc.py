"""Transaction monitoring: each customer has an employer, a salary and payday, spending habits
and a PEP flag; memos and counterparties read like a Chinese bank statement.

Pattern payments read like the statement's own: the memos customers write, the channels
and currencies they use. (Keyword memos and near-threshold sums stay: they are what
the reporting rules are written for.)

Patterns (each invisible in a single event):
- ``structuring``: 3-6 deposits just under the 50,000 CNY reporting line within 24 h.
- ``pep_high_risk_corridor``: a PEP wires sums far above habit to high-risk jurisdictions.
- ``rapid_in_out``: a large credit leaves again within hours, split across several people.
- ``illicit_keyword_flow``: transfers far above habit, some memos naming crypto or gambling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

HOUR = 3_600_000
LARGE = 50_000.0  # CNY: the large-amount reporting line
USD_CNY = 7.1
# memo, weight, share incoming, channel, amount in monthly salaries, log spread, counterparty
CATEGORIES = (
    ("消费", 0.30, 0.0, "card", 0.02, 0.9, "company"),
    ("转账", 0.15, 0.5, "internal", 0.15, 1.0, "person"),
    ("水电费", 0.06, 0.0, "internal", 0.03, 0.5, "utility"),
    ("还款", 0.07, 0.0, "internal", 0.3, 0.6, "bank"),
    ("理财", 0.05, 0.4, "internal", 1.0, 0.7, "bank"),
    ("保险", 0.03, 0.0, "internal", 0.15, 0.6, "insurer"),
    ("租金", 0.04, 0.1, "internal", 0.4, 0.3, "person"),
    ("货款", 0.04, 0.5, "wire", 0.6, 0.9, "company"),
    ("报销", 0.03, 1.0, "internal", 0.1, 0.8, "employer"),
    ("奖金", 0.01, 1.0, "internal", 0.5, 0.6, "employer"),
    ("学费", 0.01, 0.0, "wire", 0.6, 0.5, "school"),
    ("医疗费", 0.02, 0.0, "card", 0.1, 1.0, "hospital"),
    ("ATM取款", 0.04, 0.0, "cash", 0.1, 0.7, "none"),
    ("现金存入", 0.02, 1.0, "cash", 0.15, 0.8, "none"),
    (None, 0.10, 0.5, "internal", 0.1, 1.2, "person"),
    ("购房款", 0.0012, 0.0, "wire", 50.0, 0.5, "company"),  # legitimately large, a few per mille
    ("装修款", 0.0012, 0.0, "internal", 10.0, 0.4, "company"),
    ("年终奖", 0.0015, 1.0, "internal", 3.0, 0.5, "employer"),
    ("工资", 0.0, 1.0, "internal", 1.0, 0.02, "employer"),  # on paydays only, see _paydays
)
MEMO, WEIGHT, SHARE_IN, CHANNEL, MULTIPLE, SPREAD, COUNTERPARTY = map(np.array, zip(*CATEGORIES, strict=True))
WEIGHT = WEIGHT / WEIGHT.sum()
SALARY = len(CATEGORIES) - 1
INSTITUTIONS = {
    "utility": ["国网上海市电力公司", "北京市自来水集团有限责任公司", "深圳市燃气集团股份有限公司"],
    "bank": ["招商银行信用卡中心", "中国工商银行股份有限公司", "平安银行股份有限公司"],
    "insurer": ["中国人寿保险股份有限公司", "中国平安人寿保险股份有限公司", "泰康人寿保险有限责任公司"],
    "hospital": ["北京协和医院", "复旦大学附属华山医院", "四川大学华西医院", "中山大学附属第一医院"],
    "school": ["华东师范大学", "北京市海淀外国语实验学校", "上海市世界外国语中学", "浙江大学"],
}
# Legitimate cross-border partners; offshore and frontier ones too (holding companies, trade).
ABROAD = np.array(["HK", "US", "SG", "GB", "AU", "JP", "CA", "AE", "VG", "KH", "PA"])
ABROAD_WEIGHTS = [0.38, 0.15, 0.12, 0.08, 0.07, 0.06, 0.05, 0.05, 0.02, 0.01, 0.01]
PAYDAYS = [1, 5, 8, 10, 15, 20, 25, 28]  # day of month salaries are paid
PAYDAY_WEIGHTS = [0.05, 0.15, 0.2, 0.25, 0.2, 0.05, 0.05, 0.05]
HIGH_RISK = ["VG", "KY", "PA", "MM", "KH", "IR"]
KEYWORDS = ["虚拟货币", "比特币", "USDT充值", "赌资", "博彩"]
CORRIDORS = [c for c in HIGH_RISK if c in ABROAD]  # high-risk places customers also send to
CJK = re.compile("[\u4e00-\u9fff]")


def _split(pool: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Chinese and other entries of a Faker pool (statements read Chinese; wires abroad not)."""
    values, chinese = np.array(pool, dtype=object), np.array([bool(CJK.search(x)) for x in pool])
    return values[chinese], values[~chinese]


class AmlKycGenerator(ScenarioGenerator):
    scenario = "aml_kyc"
    code = "aml"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.pep = rng.random(n) < 0.01
        self.pep[int(rng.integers(0, n))] = True  # every population holds at least one PEP
        self.peps = np.flatnonzero(self.pep)
        self.salary = rng.lognormal(np.log(8_000.0), 0.55, n) * np.where(self.pep, 3.0, 1.0)
        self.payday = rng.choice(PAYDAYS, n, p=PAYDAY_WEIGHTS)
        self.paid = np.full(n, -1, dtype=np.int64)  # month (since 1970) of the last salary
        self.abroad = np.where(self.pep, 0.05, rng.choice([0.0, 0.02], n, p=[0.6, 0.4]))
        self.companies, self.foreign = _split(self.pools.companies)
        self.employer = rng.integers(0, len(self.companies), n)
        self.cp_pools = {"company": self.companies, "person": _split(self.pools.names)[0]} | {
            key: np.array(names, dtype=object) for key, names in INSTITUTIONS.items()}

    def _paydays(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> np.ndarray:
        """Rows that pay a salary: each customer's first event on its payday, once a month."""
        beijing = (timestamps_ms + 8 * HOUR).astype("datetime64[ms]")
        day = beijing.astype("datetime64[D]")
        month = day.astype("datetime64[M]")
        dom = (day - month).astype(np.int64) + 1
        month = month.astype(np.int64)
        due = np.flatnonzero((dom == self.payday[entities]) & (self.paid[entities] != month))
        rows = due[np.unique(entities[due], return_index=True)[1]]
        self.paid[entities[rows]] = month[rows]
        return rows

    def _counterparties(self, kinds: np.ndarray, entities: np.ndarray) -> np.ndarray:
        out = np.full(len(kinds), None, dtype=object)
        for kind, pool in self.cp_pools.items():
            rows = np.flatnonzero(kinds == kind)
            out[rows] = pool[self.rng.integers(0, len(pool), len(rows))]
        rows = np.flatnonzero(kinds == "employer")
        out[rows] = self.companies[self.employer[entities[rows]]]
        return out

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n, e = self.rng, len(entities), entities
        cat = rng.choice(len(CATEGORIES), n, p=WEIGHT)
        cat[self._paydays(e, timestamps_ms)] = SALARY
        amount = self.salary[e] * MULTIPLE[cat] * rng.lognormal(0.0, SPREAD[cat])
        channel = CHANNEL[cat]
        cash = np.maximum(np.round(amount, -2), 100.0)  # notes only
        amount = np.where(channel == "cash", cash, np.round(amount, 2))
        incoming = rng.random(n) < SHARE_IN[cat]
        memo = np.where(rng.random(n) < 0.06, np.array(None), MEMO[cat])  # tellers leave some blank
        counterparty = self._counterparties(COUNTERPARTY[cat], e)
        # Cross-border: tuition, trade, family abroad; wired in USD.
        abroad = (rng.random(n) < self.abroad[e]) & (cat != SALARY) & (channel != "cash")
        rows = np.flatnonzero(abroad)
        channel[rows] = "wire"
        amount[rows] = np.round(amount[rows] / USD_CNY, 2)
        counterparty[rows] = self.foreign[rng.integers(0, len(self.foreign), len(rows))]
        there = rng.choice(ABROAD, n, p=ABROAD_WEIGHTS)
        source = np.where(abroad & incoming, there, "CN")
        destination = np.where(abroad & ~incoming, there, "CN")
        return [
            {
                "amount": max(a, 0.01), "currency": "USD" if x else "CNY",
                "direction": "in" if i else "out", "channel": ch, "source_country": s,
                "destination_country": d, "pep": p, "memo": m, "counterparty": c,
            }
            for a, x, i, ch, s, d, p, m, c in zip(
                amount.tolist(), abroad.tolist(), incoming.tolist(), channel.tolist(),
                source.tolist(), destination.tolist(), self.pep[e].tolist(), memo.tolist(),
                counterparty.tolist(), strict=True,
            )
        ]

    def _tx(self, entity: int, amount: float, direction: str, channel: str, memo: str | None,
            counterparty: str | None, country: str = "CN", currency: str = "CNY") -> Event:
        """One pattern payment, with the same fields a background payment has."""
        return {
            "amount": round(float(amount), 2), "currency": currency, "direction": direction,
            "channel": channel, "source_country": "CN" if direction == "out" else country,
            "destination_country": country if direction == "out" else "CN",
            "pep": bool(self.pep[entity]), "memo": memo, "counterparty": counterparty,
        }

    def _pick(self, options: Sequence[Any] | np.ndarray) -> Any:
        return options[int(self.rng.integers(0, len(options)))]

    def _offsets(self, count: int, hours: float) -> list[int]:
        return np.sort(self.rng.integers(0, int(hours * HOUR), count)).tolist()

    def _structuring(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Each credit is a plausible sum under the line; three to six in a day are not."""
        rng, events = self.rng, []
        for offset in self._offsets(int(rng.integers(3, 7)), 22):
            amount = rng.uniform(45_000.0, LARGE - 1.0)
            if rng.random() < 0.6:  # cash at different branches, whole hundreds
                event = self._tx(entity, amount // 100 * 100, "in", "cash",
                                 self._pick(["现金存入", None]), None)
            else:  # or friends paying in
                event = self._tx(entity, amount, "in", "internal", self._pick(["转账", None]),
                                 self._pick(self.cp_pools["person"]))
            events.append((offset, event))
        return events

    def _pep_high_risk_corridor(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Sent to a PEP (not the busy customer drawn for us): the ``_entity`` of each event."""
        rng, pep = self.rng, int(self.rng.choice(self.peps))
        country, payee = str(rng.choice(CORRIDORS)), self._pick(self.foreign)
        return [
            (offset, {"_entity": pep, **self._tx(
                pep, self.salary[pep] * rng.uniform(8, 25) / USD_CNY, "out", "wire",
                self._pick([None, "货款", "转账"]), payee, country, "USD")})
            for offset in self._offsets(int(rng.integers(1, 4)), 48)
        ]

    def _rapid_in_out(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """A pass-through account: the balance barely rests before it fans out."""
        rng = self.rng
        total = max(self.salary[entity] * rng.uniform(15, 50), 80_000.0 * rng.uniform(1, 3))
        events = [(0, self._tx(entity, total, "in", "wire", self._pick(["货款", None, "转账"]),
                               self._pick(self.companies)))]
        count = int(rng.integers(3, 7))
        parts = rng.dirichlet(np.full(count, 4.0)) * total * rng.uniform(0.95, 0.995)
        people = rng.choice(self.cp_pools["person"], count, replace=False).tolist()
        offsets = self._offsets(count, rng.uniform(1, 6))
        for offset, part, person in zip(offsets, parts.tolist(), people, strict=True):
            events.append((HOUR // 3 + offset, self._tx(
                entity, part, "out", "internal", self._pick([None, "转账", "租金"]), person)))
        return events

    def _illicit_keyword_flow(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Only some memos give it away; the rest read like any transfer."""
        rng = self.rng
        return [
            (offset, self._tx(
                entity, round(self.salary[entity] * rng.uniform(1.5, 6.0), -2), "out", "internal",
                self._pick([*KEYWORDS, None, "转账", None, "转账", None]),
                self._pick(self.cp_pools["person"])))
            for offset in self._offsets(int(rng.integers(2, 5)), 6)
        ]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("structuring", 0.0015, self._structuring,
                    "several deposits just under 50,000 CNY within 24 h"),
            Pattern("pep_high_risk_corridor", 0.0003, self._pep_high_risk_corridor,
                    "a PEP wires far above habit to high-risk jurisdictions"),
            Pattern("rapid_in_out", 0.0008, self._rapid_in_out,
                    "a large credit split out to several people within hours"),
            Pattern("illicit_keyword_flow", 0.0004, self._illicit_keyword_flow,
                    "large transfers, some memos naming crypto or gambling"),
        ]
