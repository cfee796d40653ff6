"""Interbank lending and derivatives: deals keyed by counterparty bank (market and liquidity
risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Currency, EventBase, Id, PositiveMoney
from bankguard.features.spec import HOUR_MS, Feature, WindowFeature
from bankguard.models.features import (H6, Categorical, Columns, Numeric, categorical, declare, log_ratio, mean_of,
                                       numbers, window)
from bankguard.models.sequences import flag, onehot, scaled
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import (BASELINE, TENURE, Columns as RuleColumns, ContextRule, Values, baseline_mean,
                                     habit)
from bankguard.scenarios.unit import Scenario


class InterbankDerivativesEvent(EventBase):
    """An interbank loan or derivative deal (entity: counterparty bank)."""

    scenario: Literal["interbank_derivatives"] = "interbank_derivatives"
    amount: PositiveMoney
    currency: Currency
    derivative_type: Literal["swap", "option", "future", "loan"]
    interest_rate: Annotated[float, Field(ge=-5, le=50)]
    tenor_days: Annotated[int, Field(ge=1, le=18_250)]
    direction: Literal["pay", "receive"]
    desk: Id


class ExposureConcentrationParams(RuleParams):
    min_deals: int = Field(4, ge=2)
    size_multiple: float = Field(2.0, gt=1)  # above the bank's own mean deal
    rate_multiple: float = Field(3.0, gt=1)  # deals in 6 h above the bank's own 6-hour habit
    min_history: int = Field(5, ge=1)


class ExposureConcentration(ContextRule[ExposureConcentrationParams]):
    id = "interbank_derivatives.exposure_concentration"
    scenario = "interbank_derivatives"
    summary = ("Many deals with one bank within 6 h, more than its 90-day habit and each well above its "
               "usual size.")
    parameters = ExposureConcentrationParams

    def declare(self, p: ExposureConcentrationParams) -> tuple[Feature, ...]:
        return (WindowFeature("deals_6h", "count", HOUR_MS, 6),
                WindowFeature("notional_6h", "sum", HOUR_MS, 6, value="amount"), *BASELINE, TENURE)

    def assess(self, batch: Batch, p: ExposureConcentrationParams) -> tuple[np.ndarray, RuleColumns]:
        deals = batch.feature("deals_6h") + 1
        total = batch.feature("notional_6h") + batch.column("amount", numeric=True)
        count, mean = baseline_mean(batch)
        # A bank that deals all day makes four deals in 6 h as a habit: the count is weighed
        # against its own rate over the days seen before these 6 h, as loan stacking does.
        usual_6h = habit(batch, count, deals, 0.25).usual
        mask = ((deals >= p.min_deals) & (count >= p.min_history) & (deals > p.rate_multiple * usual_6h)
                & (total / deals > p.size_multiple * mean))
        return mask, {"deals_6h": deals, "usual_per_6h": usual_6h, "notional_6h": total, "mean_deal_90d": mean}

    def reasons(self, v: Values, p: ExposureConcentrationParams) -> list[str]:
        return [(f"{int(v['deals_6h'])} deals in 6 h against {v['usual_per_6h']:.1f} usually, totalling "
                 f"{v['notional_6h']:,.0f}"),
                (f"average deal {v['notional_6h'] / v['deals_6h']:,.0f} vs the bank's 90-day mean "
                f"{v['mean_deal_90d']:,.0f}")]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    tenor = numbers(c, "tenor_days")
    return {"log_tenor": np.log1p(tenor),
            "notional_6h_vs_30d": log_ratio(w["m_notional_6h"] + np.abs(numbers(c, "amount")),
                                            mean_of(w["m_amt_sum_30d"], w["m_amt_n_30d"]))}


SCENARIO = Scenario(
    key="interbank_derivatives", name="Interbank lending and derivatives", entity="counterparty bank",
    entity_prefix="BNK", risk_types=("market", "liquidity"), controls=("VaR", "liquidity limits"),
    event=InterbankDerivativesEvent,
    rules=(ExposureConcentration,),
    features=declare(
        "interbank_derivatives",
        (window("m_deals_6h", "count", H6), window("m_notional_6h", "sum", H6, "amount")),
        (Numeric("interest_rate"),),
        (categorical(InterbankDerivativesEvent, "derivative_type"),
         categorical(InterbankDerivativesEvent, "direction"), Categorical("currency", ("CNY", "USD")),
         Categorical("tenor_days", ("1", "7", "14", "30", "90", "180", "365", "730", "1825"))),
        derive, ("log_tenor", "notional_6h_vs_30d"), ("tenor_days",), counterparty=None),
    sequence=(onehot("derivative_type", ("swap", "option", "future", "loan")),
              scaled("interest_rate", 10.0), scaled("tenor_days", 8.0, log=True),
              flag("currency", lambda v: v == "USD")),
    generator="InterbankDerivativesGenerator",
)
