"""Corporate loan applications: each company has an industry, a revenue, a credit score, a
leverage (debt ratio), a home branch and two others it sometimes uses, and a habitual
request size relative to its revenue.

Patterns (each invisible in a single event):
- ``loan_stacking``: one company files several applications within two or three days at
  different branches, amounts rising and the same collateral pledged each time; every
  request is affordable alone, their total is far above what the revenue supports.
- ``deteriorating_financials``: successive applications a few days apart show the debt
  ratio climbing and the credit score and revenue falling fast, ending in a large
  unsecured request.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

HOUR = 3_600_000
DAY = 24 * HOUR
INDUSTRIES = np.array(["tech", "finance", "retail", "manufacturing"])
INDUSTRY_WEIGHTS = [0.25, 0.1, 0.3, 0.35]
LEVERAGE = np.array([0.7, 2.5, 1.0, 1.2])  # median debt ratio per industry
SECURED = np.array([0.4, 0.5, 0.6, 0.8])  # share of secured applications per industry
PURPOSES = np.array(["working capital", "equipment purchase", "trade finance", "refinancing",
                     "capacity expansion", "bridge loan"])
PURPOSE_WEIGHTS = [0.4, 0.15, 0.15, 0.12, 0.12, 0.06]
N_BRANCHES = 400


class EnterpriseLoanGenerator(ScenarioGenerator):
    scenario = "enterprise_loan"
    code = "el"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_WEIGHTS)
        self.usd = rng.random(n) < 0.06  # exporters report and borrow in USD
        revenue = rng.lognormal(np.log(6e7), 1.1, n).clip(2e6) / np.where(self.usd, 7.2, 1.0)
        self.revenue = np.round(revenue, -4)
        self.score = rng.normal(690.0, 55.0, n).clip(380, 840)
        self.leverage = LEVERAGE[self.industry] * rng.lognormal(0.0, 0.45, n)
        self.share = rng.lognormal(np.log(0.07), 0.5, n)  # usual request / annual revenue
        self.branches = rng.integers(0, N_BRANCHES, (n, 3))  # home branch, then two others
        self.guarantor = rng.integers(0, self.pools.size, n)

    @staticmethod
    def _loan(amount: np.ndarray) -> np.ndarray:
        """Requests are round sums: nearest 10,000, at least 50,000."""
        return np.round(amount.clip(5e4), -4)

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n = self.rng, len(entities)
        revenue = self.revenue[entities]
        amount = self._loan(revenue * self.share[entities] * rng.lognormal(0.0, 0.5, n))
        secured = rng.random(n) < SECURED[self.industry[entities]]
        cover = rng.lognormal(np.log(1.2), 0.25, n)
        collateral = np.where(secured, np.round(amount * cover, -3), 0.0)
        score = (self.score[entities] + rng.normal(0.0, 4.0, n)).round().clip(300, 850)
        debt = np.round(self.leverage[entities] * rng.lognormal(0.0, 0.04, n), 3).clip(0, 10)
        branch = self.branches[entities, rng.choice(3, n, p=[0.85, 0.1, 0.05])]
        purpose = rng.choice(PURPOSES, n, p=PURPOSE_WEIGHTS)
        guarantor = np.where(rng.random(n) < 0.3, self.guarantor[entities], -1)
        currency = np.where(self.usd[entities], "USD", "CNY")
        companies = self.pools.companies
        return [
            {
                "amount": a, "currency": c, "industry_type": i, "credit_score": int(s),
                "debt_ratio": d, "annual_revenue": r, "collateral_value": v,
                "branch_id": f"BR-{b:04d}", "memo": m,
                "counterparty": companies[g] if g >= 0 else None,
            }
            for a, c, i, s, d, r, v, b, m, g in zip(
                amount.tolist(), currency.tolist(), INDUSTRIES[self.industry[entities]].tolist(),
                score.tolist(), debt.tolist(), revenue.tolist(), collateral.tolist(),
                branch.tolist(), purpose.tolist(), guarantor.tolist(), strict=True,
            )
        ]

    def _company(self, entity: int) -> Event:
        """Fields that identify the company the same way its normal traffic does."""
        return {"currency": "USD" if self.usd[entity] else "CNY",
                "industry_type": str(INDUSTRIES[self.industry[entity]])}

    def _loan_stacking(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, k = self.rng, int(self.rng.integers(4, 7))
        revenue = float(self.revenue[entity])
        amounts = self._loan(np.sort(rng.uniform(0.15, 0.32, k)) * revenue).tolist()
        pledge = round(amounts[0] * float(rng.uniform(1.0, 1.4)), -3)  # one asset, pledged k times
        unknown = np.setdiff1d(np.arange(N_BRANCHES), self.branches[entity])
        branches = [int(self.branches[entity, 0]),
                    *rng.choice(unknown, k - 1, replace=False).tolist()]  # then new branches
        offsets = np.cumsum(rng.integers(2 * HOUR, 12 * HOUR, k)) - 2 * HOUR
        purpose = str(rng.choice(PURPOSES[:3]))
        return [
            (int(offset), {
                **self._company(entity), "amount": amount, "annual_revenue": revenue,
                "credit_score": min(850, round(self.score[entity] + rng.normal(0.0, 4.0))),
                "debt_ratio": round(float(self.leverage[entity] * rng.lognormal(0.0, 0.04)), 3),
                "collateral_value": pledge, "branch_id": f"BR-{branch:04d}", "memo": purpose,
            })
            for offset, amount, branch in zip(offsets.tolist(), amounts, branches, strict=True)
        ]

    def _trend(self, k: int, low: float, high: float) -> np.ndarray:
        """Compounded factors for k successive filings, the first at 1 (the company as known)."""
        return np.cumprod(np.r_[1.0, self.rng.uniform(low, high, k - 1)])

    def _deteriorating(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        rng, k = self.rng, int(self.rng.integers(3, 6))
        debt = (self.leverage[entity] * self._trend(k, 1.25, 1.55)).clip(0, 9.9)
        drops = np.cumsum(np.r_[0.0, rng.uniform(25.0, 50.0, k - 1)])
        score = (self.score[entity] - drops).round().clip(300)
        revenue = np.round(self.revenue[entity] * self._trend(k, 0.85, 0.95), -4)
        usual = max(float(self.revenue[entity] * self.share[entity]), 5e4)
        amount = usual * rng.lognormal(0.0, 0.2, k)
        amount[-1] = usual * rng.uniform(4.0, 7.0)  # the last, large request
        amount = self._loan(amount)
        collateral = np.where(rng.random(k) < SECURED[self.industry[entity]],
                              np.round(amount * 1.1, -3), 0.0)
        collateral[-1] = 0.0
        offsets = np.cumsum(rng.integers(DAY, 4 * DAY, k)) - DAY
        home = f"BR-{int(self.branches[entity, 0]):04d}"
        return [
            (int(o), {
                **self._company(entity), "amount": a, "annual_revenue": r, "credit_score": int(s),
                "debt_ratio": round(d, 3), "collateral_value": v, "branch_id": home,
                "memo": "working capital" if i < k - 1 else "refinancing",
            })
            for i, (o, a, r, s, d, v) in enumerate(zip(
                offsets.tolist(), amount.tolist(), revenue.tolist(), score.tolist(),
                debt.tolist(), collateral.tolist(), strict=True))
        ]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("loan_stacking", 0.0015, self._loan_stacking,
                    "applications at several branches within days, total far above revenue"),
            Pattern("deteriorating_financials", 0.0015, self._deteriorating,
                    "debt ratio climbing, score falling, then a large unsecured request"),
        ]
