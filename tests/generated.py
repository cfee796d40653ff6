"""Generated traffic shared by the tests that need a lot of it: each scenario's generator
runs once per session, not once per test (Faker is most of the fast tier's cost)."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from bankguard.producers.scenarios import generator_class
from bankguard.producers.scenarios.base import Emitted

START_MS = 1_790_000_000_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class Span(NamedTuple):
    """``periods`` consecutive periods of ``period_ms``, ``per_period`` events each."""

    periods: int
    period_ms: int
    per_period: int


TWO_DAYS = Span(48, HOUR_MS, 250)
# Loan stacking needs a company known for two weeks: a month, at the same number of events.
SPANS = {"enterprise_loan": Span(30, DAY_MS, 400)}


@cache
def traffic(scenario: str) -> tuple[Emitted, ...]:
    """About 12,000 events of ``scenario`` over 300 entities (seed 17): long enough for the
    rules' windows and baselines, busy enough that every scenario raises alerts."""
    span = SPANS.get(scenario, TWO_DAYS)
    generator = generator_class(scenario)(seed=17, n_entities=300)
    return tuple(row for i in range(span.periods)
                 for row in generator.generate(START_MS + i * span.period_ms, START_MS + (i + 1) * span.period_ms,
                                               span.per_period))

