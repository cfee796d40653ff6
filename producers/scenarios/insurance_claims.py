"""Insurance claims: each policy has a line of cover, a start date, a usual provider and a
claim count that grows with every claim it files.

Patterns (each invisible in a single event):
- ``early_claim``: a large claim within days or weeks of a newly issued policy's start.
- ``claim_ring``: several unrelated policies claim similar amounts through one provider
  within two days (staged claims).
- ``repeat_claims``: one policy, quiet until now, files several claims within weeks.

Pattern policies are issued on demand beyond the background population (new ones, or
dormant ones that never claimed in the stream), so no episode shares a policy with
background traffic or another episode and ``prior_claims`` stays a true running count.
Most ordinary claims are filed the same way, by a policy claiming for the first time, so
that a policy never seen before is what a claim usually comes from, not a sign of fraud.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator
from bankguard.scenarios import SCENARIOS

DAY = 86_400_000
LINES = ["health", "auto", "property", "life"]
LINE_WEIGHTS = [0.45, 0.35, 0.15, 0.05]
CLAIM_FREQUENCY = np.array([1.0, 0.6, 0.25, 0.03])  # relative; a life policy claims once, if ever
CLAIMS_PER_YEAR = np.array([0.8, 0.3, 0.1, 0.0])  # to seed each policy's history
CLAIM_MIX = np.array(LINE_WEIGHTS) * CLAIM_FREQUENCY / np.dot(LINE_WEIGHTS, CLAIM_FREQUENCY)  # lines of claims
TYPICAL = np.array([2_500.0, 6_000.0, 15_000.0, 300_000.0])  # median claim, CNY
SPREAD = np.array([1.0, 0.9, 1.1, 0.6])
# Share of ordinary claims filed by a policy for the first time: a policy claims about once
# a year, so in any month most claims come from policies never seen claiming before.
FIRST_CLAIM_SHARE = 0.6
NEW_POLICY_SHARE, NEW_AGE_DAYS, BOOK_AGE_DAYS = 0.04, (7, 90), (90, 3_650)  # the book's policy ages
# provider id range per line: clinics, garages, property assessors, (life claims have none)
PROVIDERS = np.array([[0, 6_000], [6_000, 9_000], [9_000, 9_800], [9_800, 10_000]])
MEMOS = np.array([["门诊费用", "住院费用", "药品费用"], ["车辆维修", "定损理赔", "玻璃更换"],
                  ["水渍损失", "火灾损失", "盗抢损失"], ["身故理赔", "重疾理赔", "全残理赔"]])


class InsuranceClaimsGenerator(ScenarioGenerator):
    scenario = "insurance_claims"
    code = "ins"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.line = rng.choice(len(LINES), n, p=LINE_WEIGHTS)
        self.cover = rng.lognormal(0.0, 0.4, n)  # sum insured relative to the line's norm
        new = rng.random(n) < NEW_POLICY_SHARE  # issued within the last quarter
        self.age_days = np.where(new, rng.integers(*NEW_AGE_DAYS, n), rng.integers(*BOOK_AGE_DAYS, n))
        self.claims = self._history(self.line, self.age_days)
        self.provider = self._random_provider(self.line)
        self.start_text: np.ndarray | None = None  # dates fixed by the first event's day
        # Most policies rarely claim: they keep showing up for the first time all run long.
        rare = np.where(rng.random(n) < 0.4, rng.lognormal(np.log(0.03), 0.5, n), 1.0)
        activity = self.activity * CLAIM_FREQUENCY[self.line] * rare
        self.activity = activity / activity.sum()

    def _history(self, lines: np.ndarray, age_days: np.ndarray) -> np.ndarray:
        """Claims filed before the stream started, from the line's yearly rate and the age."""
        return np.minimum(self.rng.poisson(CLAIMS_PER_YEAR[lines] * age_days / 365), 60)

    def _random_provider(self, lines: np.ndarray) -> np.ndarray:
        low, high = PROVIDERS[lines, 0], PROVIDERS[lines, 1]
        return low + (self.rng.random(len(lines)) * (high - low)).astype(np.int64)

    def _starts(self, first_ms: int) -> np.ndarray:
        """Policy start dates, anchored once on the first simulated day (stable afterwards)."""
        if self.start_text is None:
            day = (first_ms // DAY - self.age_days).astype("datetime64[D]")
            self.start_text = np.array(np.datetime_as_string(day), dtype=object)
        return self.start_text

    def _file(self, entities: np.ndarray) -> np.ndarray:
        """The prior-claim count each claim sees, counting earlier claims of the same batch."""
        n = len(entities)
        order = np.argsort(entities, kind="stable")
        ranked = entities[order]
        first = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
        prior = self.claims[entities] + rank
        self.claims += np.bincount(entities, minlength=self.n_entities)
        return np.minimum(prior, 100)

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n, e = self.rng, len(entities), entities
        if n == 0:
            return []
        fresh = rng.random(n) < FIRST_CLAIM_SHARE
        events = self._regular(e[~fresh], timestamps_ms[~fresh])
        first = iter(self._first_claims(self.line[e[fresh]], timestamps_ms[fresh]))
        regular = iter(events)
        return [next(first) if is_fresh else next(regular) for is_fresh in fresh.tolist()]

    def _first_claims(self, lines: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        """Claims of policies that never claimed before (most claims, in a month of a real
        book): each an ordinary claim of a policy issued for it, as pattern policies are."""
        out = []
        for line, t in zip(lines.tolist(), timestamps_ms.tolist(), strict=True):
            new = self.rng.random() < NEW_POLICY_SHARE  # issued within the last quarter, as in the book
            age = int(self.rng.integers(*NEW_AGE_DAYS) if new else self.rng.integers(*BOOK_AGE_DAYS))
            claim = self._claim(self._issue(int(t), age, line), float(self.rng.lognormal(0.0, SPREAD[line])))
            out.append(claim | {"amount": max(claim["amount"], 50.0)})  # the book's floor, as below
        return out

    def _regular(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        """Claims of the book's policies, each with its running claim count."""
        rng, n, e = self.rng, len(entities), entities
        if n == 0:
            return []
        line = self.line[e]
        amount = np.round(TYPICAL[line] * self.cover[e] * rng.lognormal(0.0, SPREAD[line]), 2)
        usual = rng.random(n) < 0.65  # the family clinic, the garage down the road
        provider = np.where(usual, self.provider[e], self._random_provider(line))
        memo = MEMOS[line, rng.integers(0, MEMOS.shape[1], n)]
        starts = self._starts(int(timestamps_ms[0]))[e]
        return [
            {
                "amount": max(a, 50.0), "currency": "CNY", "claim_type": LINES[k],
                "policy_start": s, "prior_claims": c, "memo": m,
                "counterparty": None if k == 3 else f"PRV-{p:05d}",
            }
            for a, k, s, c, m, p in zip(
                amount.tolist(), line.tolist(), starts.tolist(), self._file(e).tolist(),
                memo.tolist(), provider.tolist(), strict=True,
            )
        ]

    def _issue(self, t0: int, age_days: int, line: int) -> dict[str, Any]:
        """A policy outside the background population: its index, line, start and history."""
        index = len(self.entity_ids)
        self.entity_ids.append(f"{SCENARIOS[self.scenario].entity_prefix}-{index:07d}")
        return {"index": index, "line": line, "cover": float(self.rng.lognormal(0.0, 0.4)),
                "start": str(np.datetime64(t0 // DAY - age_days, "D")),
                "claims": int(self._history(np.array([line]), np.array([age_days]))[0])}

    def _claim(self, policy: dict[str, Any], scale: float, provider: int | None = None) -> Event:
        """The policy's next claim; ``scale`` multiplies the policy's typical amount."""
        line = policy["line"]
        if provider is None:
            provider = int(self._random_provider(np.array([line]))[0])
        prior, policy["claims"] = policy["claims"], policy["claims"] + 1
        return {
            "amount": round(float(TYPICAL[line] * policy["cover"] * scale), 2), "currency": "CNY",
            "claim_type": LINES[line], "policy_start": policy["start"],
            "prior_claims": min(prior, 100),
            "memo": str(MEMOS[line, int(self.rng.integers(0, MEMOS.shape[1]))]),
            "counterparty": None if line == 3 else f"PRV-{provider:05d}",
            "_entity": policy["index"],
        }

    def _early_claim(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """A policy issued days or weeks ago; its first claim is several times the norm."""
        rng = self.rng
        line = int(rng.choice(len(LINES), p=CLAIM_MIX))  # claims' own mix of lines
        policy = self._issue(t0, int(rng.integers(3, 45)), line)
        policy["claims"] = 0
        return [(0, self._claim(policy, rng.uniform(4.0, 12.0)))]

    def _claim_ring(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Each claim is ordinary for its policy; the shared provider and bill tie them."""
        rng = self.rng
        line = int(rng.choice([0, 1], p=[0.4, 0.6]))  # clinics and garages
        provider = int(self._random_provider(np.array([line]))[0])
        size = int(rng.integers(4, 8))
        members = [self._issue(t0, int(rng.integers(120, 3_000)), line) for _ in range(size)]
        scale = rng.uniform(1.5, 3.0)  # one staged bill, copied with small edits
        offsets = np.sort(rng.integers(0, 2 * DAY, size)).tolist()
        return [
            (offset, self._claim(member, scale * rng.uniform(0.93, 1.07) / member["cover"],
                                 provider))
            for offset, member in zip(offsets, members, strict=True)
        ]

    def _repeat_claims(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Modest claims, but far more often than the policy's years of history suggest."""
        rng = self.rng
        line = int(rng.choice(3, p=[0.5, 0.4, 0.1]))  # not life: a life policy pays once
        policy = self._issue(t0, int(rng.integers(365, 3_000)), line)
        count = int(rng.integers(3, 6))
        offsets = [0, *np.sort(rng.integers(DAY, 28 * DAY, count - 1)).tolist()]
        return [(offset, self._claim(policy, rng.lognormal(0.3, 0.4))) for offset in offsets]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("early_claim", 0.003, self._early_claim,
                    "a large claim within weeks of the policy's start"),
            Pattern("claim_ring", 0.0006, self._claim_ring,
                    "unrelated policies claim similar amounts through one provider"),
            Pattern("repeat_claims", 0.0008, self._repeat_claims,
                    "a quiet policy files several claims within weeks"),
        ]
