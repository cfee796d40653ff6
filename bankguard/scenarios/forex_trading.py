"""FX trading: trades keyed by trader (market risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Currency, EventBase, Id, PositiveMoney
from bankguard.features.spec import Feature, SinceLast, Where
from bankguard.models.features import (H1, M10, Categorical, Columns, Numeric, categorical, declare, log_ratio,
                                       mean_of, numbers, texts, window)
from bankguard.models.sequences import flag, onehot
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import BASELINE, Columns as RuleColumns, ContextRule, Values, baseline_mean
from bankguard.scenarios.unit import Scenario


class ForexTradingEvent(EventBase):
    """An FX trade (entity: trader); amount is the notional in the base currency."""

    scenario: Literal["forex_trading"] = "forex_trading"
    amount: PositiveMoney
    currency: Currency
    currency_pair: Literal["USD/EUR", "USD/JPY", "GBP/USD"]
    side: Literal["buy", "sell"]
    price: PositiveMoney
    volatility: Annotated[float, Field(ge=0, le=5)]
    desk: Id


class PositionSpikeParams(RuleParams):
    multiple: float = Field(5.0, gt=1)  # above the trader's own mean ticket
    min_history: int = Field(5, ge=1)


class PositionSpike(ContextRule[PositionSpikeParams]):
    id = "forex_trading.position_spike"
    scenario = "forex_trading"
    summary = "A trade's notional far above the trader's own 90-day mean ticket."
    parameters = PositionSpikeParams

    def declare(self, p: PositionSpikeParams) -> tuple[Feature, ...]:
        return BASELINE

    def assess(self, batch: Batch, p: PositionSpikeParams) -> tuple[np.ndarray, RuleColumns]:
        count, mean = baseline_mean(batch)
        notional = batch.column("amount", numeric=True)
        mask = (count >= p.min_history) & (notional > p.multiple * mean)
        return mask, {"notional": notional, "mean_90d": mean, "history_trades": count}

    def reasons(self, v: Values, p: PositionSpikeParams) -> list[str]:
        return [(f"notional {v['notional']:,.0f} is {v['notional'] / v['mean_90d']:.1f}x the trader's "
                f"90-day mean {v['mean_90d']:,.0f} (limit {p.multiple:g}x)")]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = numbers(c, "amount")
    buy = (texts(c, "side") == "buy").astype(np.float64)
    recent_mean = mean_of(w["m_notional_10m"], w["m_n_10m"])
    return {
        "size_vs_10m_mean": np.abs(log_ratio(amount, recent_mean)),
        "opposite_side_1h": np.log1p(np.where(buy > 0, w["m_sells_1h"], w["m_buys_1h"])),
        "same_side_1h": np.log1p(np.where(buy > 0, w["m_buys_1h"], w["m_sells_1h"])),
    }


SCENARIO = Scenario(
    key="forex_trading", name="FX trading", entity="trader", entity_prefix="TRD",
    risk_types=("market",), controls=("limits", "hedging"),
    event=ForexTradingEvent,
    rules=(PositionSpike,),
    features=declare(
        "forex_trading",
        (window("m_buys_1h", "count", H1, where=(Where("side", "==", "buy"),)),
         window("m_sells_1h", "count", H1, where=(Where("side", "==", "sell"),)),
         window("m_n_10m", "count", M10), window("m_notional_10m", "sum", M10, "amount"),
         window("m_notional_1h", "sum", H1, "amount"), SinceLast("m_counterparty_seen", "counterparty"),
         SinceLast("m_pair_seen", "currency_pair")),
        (Numeric("volatility"),),
        (categorical(ForexTradingEvent, "currency_pair"), categorical(ForexTradingEvent, "side"),
         Categorical("desk", ("FX-SPOT-SH", "FX-SPOT-HK", "FX-FWD-SH", "FX-G10-LDN", "FX-EM-SG")),
         Categorical("memo", ("client flow", "hedge", "spot", "rebalance", "stop loss"))),
        derive, ("size_vs_10m_mean", "opposite_side_1h", "same_side_1h"), ("side",)),
    sequence=(flag("side", lambda v: v == "buy"),
              onehot("currency_pair", ("USD/EUR", "USD/JPY", "GBP/USD")),
              onehot("memo", ("client flow", "hedge", "spot", "rebalance", "stop loss"))),
    generator="ForexTradingGenerator",
)
