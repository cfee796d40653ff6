"""Wealth product sales: sales keyed by customer (compliance and reputation risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Currency, EventBase, PositiveMoney
from bankguard.features.spec import DAY_MS, Feature, SinceLast, WindowFeature, Where
from bankguard.models.features import D7, D30, Columns, Numeric, categorical, declare, numbers, texts, window
from bankguard.models.sequences import flag, onehot, scaled
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import (BASELINE, TENURE, Columns as RuleColumns, ContextRule, Values, baseline_mean,
                                     habit)
from bankguard.scenarios.unit import Scenario


class WealthProductEvent(EventBase):
    """A wealth product sale (entity: customer); counterparty is the advisor."""

    scenario: Literal["wealth_product"] = "wealth_product"
    amount: PositiveMoney
    currency: Currency
    product_type: Literal["stock", "bond", "fund", "crypto"]
    product_risk_level: Annotated[int, Field(ge=1, le=5)]
    investor_age: Annotated[int, Field(ge=18, le=110)]
    risk_tolerance: Literal["conservative", "balanced", "aggressive"]
    channel: Literal["branch", "online", "advisor"]


class UnsuitableSaleParams(RuleParams):
    min_product_risk: int = Field(4, ge=1, le=5)  # the product risk levels
    min_age: int = Field(65, ge=18, le=110)
    # Suitability is the adviser's duty: a sale the customer placed online is execution-only.
    advised_channels: tuple[Literal["branch", "online", "advisor"], ...] = ("branch", "advisor")


class UnsuitableSale(ContextRule[UnsuitableSaleParams]):
    id = "wealth_product.unsuitable_sale"
    scenario = "wealth_product"
    severity = "medium"
    summary = ("High-risk product sold on advice (branch or adviser) to an elderly customer with a "
               "conservative risk tolerance (KYC suitability).")
    parameters = UnsuitableSaleParams

    def assess(self, batch: Batch, p: UnsuitableSaleParams) -> tuple[np.ndarray, RuleColumns]:
        risk = batch.column("product_risk_level", numeric=True)
        age = batch.column("investor_age", numeric=True)
        conservative = batch.column("risk_tolerance") == "conservative"
        advised = np.isin(batch.column("channel"), p.advised_channels)
        mask = (risk >= p.min_product_risk) & (age >= p.min_age) & conservative & advised
        return mask, {"product_risk_level": risk, "investor_age": age}

    def reasons(self, v: Values, p: UnsuitableSaleParams) -> list[str]:
        return [(f"product of risk level {int(v['product_risk_level'])} sold to a "
                f"{int(v['investor_age'])}-year-old conservative investor")]


class ChurningParams(RuleParams):
    min_sales: int = Field(4, ge=2)
    multiple: float = Field(3.0, gt=1)  # above the customer's own weekly habit
    min_history_days: int = Field(28, ge=1, le=84)  # the habit is measured over at most 84 days


class Churning(ContextRule[ChurningParams]):
    id = "wealth_product.churning"
    scenario = "wealth_product"
    severity = "medium"
    summary = ("A customer's holdings traded far more often this week than in the weeks before (up to 12), "
               "once the customer has been around long enough to know the habit.")
    parameters = ChurningParams

    def declare(self, p: ChurningParams) -> tuple[Feature, ...]:
        return (WindowFeature("sales_7d", "count", DAY_MS, 7), *BASELINE, TENURE)

    def assess(self, batch: Batch, p: ChurningParams) -> tuple[np.ndarray, RuleColumns]:
        week = batch.feature("sales_7d") + 1
        count, _ = baseline_mean(batch)
        weekly = habit(batch, count, week, 7)
        mask = (weekly.days >= p.min_history_days) & (week >= p.min_sales) & (week > p.multiple * weekly.usual)
        return mask, {"sales_7d": week, "weekly_norm_90d": weekly.usual, "prior_sales_90d": weekly.prior}

    def reasons(self, v: Values, p: ChurningParams) -> list[str]:
        return [(f"{int(v['sales_7d'])} sales within 7 days against {v['weekly_norm_90d']:.1f} a week "
                f"over the weeks before")]


TOLERANCE_LEVEL = {"conservative": 1.0, "balanced": 3.0, "aggressive": 5.0}


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    memo = texts(c, "memo")
    tolerance = np.array([TOLERANCE_LEVEL.get(t, 3.0) for t in texts(c, "risk_tolerance")])
    age = numbers(c, "investor_age")
    return {
        "is_switch": np.array([isinstance(m, str) and "switch from" in m for m in memo], dtype=np.float64),
        "risk_above_tolerance": numbers(c, "product_risk_level") - tolerance,
        "elderly": (age >= 65).astype(np.float64),
    }


SCENARIO = Scenario(
    key="wealth_product", name="Wealth product sales", entity="customer", entity_prefix="WC",
    risk_types=("compliance", "reputation"), controls=("suitability (KYC)",),
    event=WealthProductEvent,
    rules=(UnsuitableSale, Churning),
    features=declare(
        "wealth_product",
        (window("m_advisor_sales_7d", "count", D7, where=(Where("channel", "==", "advisor"),)),
         window("m_high_risk_30d", "count", D30, where=(Where("product_risk_level", ">=", 4),)),
         SinceLast("m_advisor_seen", "counterparty")),
        (Numeric("product_risk_level"), Numeric("investor_age")),
        (categorical(WealthProductEvent, "product_type"), categorical(WealthProductEvent, "risk_tolerance"),
         categorical(WealthProductEvent, "channel")),
        derive, ("is_switch", "risk_above_tolerance", "elderly"),
        ("memo", "risk_tolerance", "investor_age", "product_risk_level")),
    sequence=(onehot("product_type", ("bond", "fund", "stock", "crypto")),
              scaled("product_risk_level", 5.0), onehot("channel", ("branch", "online", "advisor")),
              flag("memo", lambda v: "switch from" in str(v or ""))),
    generator="WealthProductGenerator",
)
