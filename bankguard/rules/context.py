"""Context rules: the shape every scenario's rules share, and the baseline they read.

A context rule is what a risk officer of that line would recognise, reading the entity's
recent behaviour rather than one field. Each scenario's rules live in its unit
(``bankguard/scenarios/<key>.py``) and are registered by the scenario registry.

A rule *assesses* a whole batch at once, returning the rows that fire and the named
columns it decided on; those columns, at the firing row, are the alert's evidence.
Parameters come from ``context.<rule id>`` in the rules configuration, validated by the
rule's parameter model (``parameters``), whose defaults document them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np

from bankguard.features.spec import DAY_MS, MINUTE_MS, Feature, Tenure, WindowFeature, Where
from bankguard.rules.base import Batch, Hit, hits_where, rounded
from bankguard.rules.config import SCORES, RuleParams, RulesConfig, Severity

FIVE_MIN = 5 * MINUTE_MS
BASELINE = (
    WindowFeature("amount_90d_count", "count", DAY_MS, 91, where=(Where("amount", "!=", None),)),
    WindowFeature("amount_90d_sum", "sum", DAY_MS, 91, value="abs_amount"),
)
Columns = dict[str, np.ndarray]
Values = dict[str, Any]  # the decided-on columns at one firing row
TENURE = Tenure()
P = TypeVar("P", bound=RuleParams)


def observed_days(batch: Batch, recent_days: float) -> np.ndarray:
    """Days of the entity's history that lie before its ``recent_days`` (at most the 90-day
    baseline's remainder): the span a habit measured over those days really covers."""
    baseline_days = BASELINE[0].span_ms / DAY_MS
    return np.clip(batch.feature(TENURE.name) / DAY_MS - recent_days, 0.0, baseline_days - recent_days)


class Habit(NamedTuple):
    """How often an entity usually does what it just did, from its 90-day baseline."""

    prior: np.ndarray  # events in the 90 days before the recent ones
    days: np.ndarray  # days of history those cover (:func:`observed_days`)
    usual: np.ndarray  # events the entity makes per ``recent_days``, by that history


def habit(batch: Batch, count: np.ndarray, recent: np.ndarray, recent_days: float) -> Habit:
    """The entity's usual number of events per ``recent_days``: its 90-day ``count`` less the
    ``recent`` events (the current one included), over the days seen before them. A rate per
    day actually seen, so an entity a few days old is not read as ninety quiet days."""
    prior = np.maximum(count - recent + 1, 0)
    days = observed_days(batch, recent_days)
    return Habit(prior, days, prior * recent_days / np.maximum(days, 1))


def baseline_mean(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The entity's 90-day transaction count and mean absolute amount (nan without history)."""
    count = batch.feature("amount_90d_count")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, batch.feature("amount_90d_sum") / np.maximum(count, 1), np.nan)
    return count, mean


class NoParams(RuleParams):
    """A rule with nothing to configure (an unknown parameter is still an error)."""


class ContextRule(Generic[P]):
    """Shared shape: a scenario, a parameter model, an assessment and its reasons."""

    id: ClassVar[str]
    version: ClassVar[int] = 1
    scenario: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = "high"
    parameters: type[P]  # the model of ``context.<id>``; its defaults apply where unset

    def params(self, config: RulesConfig) -> P:
        configured = config.params(self.id)
        if configured is None:
            return self.parameters()
        if not isinstance(configured, self.parameters):
            raise TypeError(f"{self.id}: parameters of type {type(configured).__name__}")
        return configured

    def applies_to(self, scenario: str, config: RulesConfig) -> bool:
        return scenario == self.scenario

    def features(self, config: RulesConfig) -> tuple[Feature, ...]:
        return self.declare(self.params(config))

    def evaluate(self, batch: Batch, config: RulesConfig) -> list[Hit]:
        p = self.params(config)
        mask, columns = self.assess(batch, p)

        def make(row: int) -> Hit:
            values = {name: column[row] for name, column in columns.items()}
            return Hit(row, self.id, self.version, self.severity, SCORES[self.severity],
                       tuple(self.reasons(values, p)), rounded(values.items()))

        return hits_where(mask, make)

    # -- per rule ---------------------------------------------------------------------
    def declare(self, p: P) -> tuple[Feature, ...]:
        return ()

    def assess(self, batch: Batch, p: P) -> tuple[np.ndarray, Columns]:
        raise NotImplementedError

    def reasons(self, v: Values, p: P) -> list[str]:
        raise NotImplementedError


