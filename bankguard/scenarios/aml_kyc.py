"""Anti-money-laundering: payments seen by transaction monitoring, keyed by customer (legal
and compliance risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Country, Currency, EventBase, Money
from bankguard.features.spec import HOUR_MS, Feature, SinceLast, WindowFeature, Where
from bankguard.models.features import (D1, H6, Categorical, Columns, Numeric, categorical, declare, log_ratio,
                                       numbers, texts, window)
from bankguard.models.sequences import flag, onehot
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import BASELINE, Columns as RuleColumns, ContextRule, Values, baseline_mean
from bankguard.scenarios.unit import Scenario


class AmlKycEvent(EventBase):
    """A payment seen by transaction monitoring (entity: customer)."""

    scenario: Literal["aml_kyc"] = "aml_kyc"
    amount: Money
    currency: Currency
    direction: Literal["in", "out"]
    channel: Literal["wire", "cash", "card", "internal", "statement"]
    source_country: Country
    destination_country: Country
    pep: bool


class StructuringParams(RuleParams):
    reporting_threshold: float = Field(50_000.0, gt=0)
    band: float = Field(0.1, gt=0, lt=1)  # the share below the threshold that counts as "just under"
    min_prior: int = Field(2, ge=1)


class Structuring(ContextRule[StructuringParams]):
    id = "aml_kyc.structuring"
    scenario = "aml_kyc"
    summary = "Several amounts just under the reporting threshold within 24 h."
    parameters = StructuringParams

    def declare(self, p: StructuringParams) -> tuple[Feature, ...]:
        low = p.reporting_threshold * (1 - p.band)
        near = (Where("amount", ">=", low), Where("amount", "<", p.reporting_threshold))
        return (WindowFeature("near_threshold_24h", "count", HOUR_MS, 24, where=near),)

    def assess(self, batch: Batch, p: StructuringParams) -> tuple[np.ndarray, RuleColumns]:
        amount = batch.column("amount", numeric=True)
        near = (amount >= p.reporting_threshold * (1 - p.band)) & (amount < p.reporting_threshold)
        prior = batch.feature("near_threshold_24h")
        return near & (prior >= p.min_prior), {"near_threshold_24h": prior + 1, "amount": amount}

    def reasons(self, v: Values, p: StructuringParams) -> list[str]:
        return [f"{int(v['near_threshold_24h'])} amounts just under {p.reporting_threshold:,.0f} within 24 h"]


class PepCorridorParams(RuleParams):
    countries: tuple[Country, ...] = Field(("IR", "KP", "MM", "AF", "SY", "YE", "KH", "PA", "KY", "VG"),
                                           min_length=1)
    multiple: float = Field(3.0, gt=1)  # above the customer's own mean


class PepCorridor(ContextRule[PepCorridorParams]):
    id = "aml_kyc.pep_high_risk_corridor"
    scenario = "aml_kyc"
    summary = "A politically exposed person sends well above habit to a high-risk jurisdiction."
    parameters = PepCorridorParams

    def declare(self, p: PepCorridorParams) -> tuple[Feature, ...]:
        return BASELINE

    def assess(self, batch: Batch, p: PepCorridorParams) -> tuple[np.ndarray, RuleColumns]:
        _, mean = baseline_mean(batch)
        amount = np.abs(batch.column("amount", numeric=True))
        risky = np.isin(batch.column("destination_country"), list(p.countries))
        above = ~(amount <= p.multiple * mean)  # no history counts as above
        mask = (batch.column("pep") == True) & risky & (batch.column("direction") == "out") & above  # noqa: E712
        return mask, {"amount": amount, "mean_90d": mean}

    def reasons(self, v: Values, p: PepCorridorParams) -> list[str]:
        return [f"politically exposed person sends {v['amount']:,.2f} to a high-risk jurisdiction",
                f"customer's 90-day mean {v['mean_90d']:,.2f}"]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = np.abs(numbers(c, "amount"))
    outgoing = (texts(c, "direction") == "out").astype(np.float64)
    dest, source = texts(c, "destination_country"), texts(c, "source_country")
    return {
        "near_threshold": ((amount >= 45_000) & (amount < 50_000)).astype(np.float64),
        "out_vs_in_24h": outgoing * log_ratio(w["m_out_sum_24h"] + amount, w["m_in_sum_24h"]),
        "cross_border": ((dest != "CN") | (source != "CN")).astype(np.float64),
        "memo_blank": np.array([m is None or m == "" for m in texts(c, "memo")], dtype=np.float64),
    }


def near_line(amount: Any) -> bool:
    return amount is not None and 45_000 <= abs(float(amount)) < 50_000


IN, OUT = (Where("direction", "==", "in"),), (Where("direction", "==", "out"),)

SCENARIO = Scenario(
    key="aml_kyc", name="Anti-money-laundering", entity="customer", entity_prefix="CUS",
    risk_types=("legal", "compliance"), controls=("transaction monitoring", "watch lists"),
    event=AmlKycEvent,
    rules=(Structuring, PepCorridor),
    features=declare(
        "aml_kyc",
        (window("m_near_threshold_24h", "count", D1,
                where=(Where("amount", ">=", 45_000), Where("amount", "<", 50_000))),
         window("m_in_24h", "count", D1, where=IN), window("m_in_sum_24h", "sum", D1, "abs_amount", where=IN),
         window("m_out_6h", "count", H6, where=OUT), window("m_out_sum_24h", "sum", D1, "abs_amount", where=OUT),
         window("m_cash_in_24h", "count", D1, where=(Where("channel", "==", "cash"),)),
         SinceLast("m_counterparty_seen", "counterparty")),
        (Numeric("pep", "bool"),),
        (categorical(AmlKycEvent, "direction"), categorical(AmlKycEvent, "channel"),
         Categorical("currency", ("CNY", "USD")),
         Categorical("destination_country", ("CN", "HK", "US", "SG", "GB", "AU", "JP", "CA", "AE", "VG",
                                             "KH", "PA", "KY", "MM", "IR")),
         Categorical("memo", ("消费", "转账", "水电费", "还款", "理财", "保险", "租金", "货款", "报销", "奖金",
                              "学费", "医疗费", "ATM取款", "现金存入", "购房款", "装修款", "年终奖", "工资",
                              "投资款", "咨询费", "虚拟货币", "比特币", "USDT充值", "赌资", "博彩"))),
        derive, ("near_threshold", "out_vs_in_24h", "cross_border", "memo_blank"),
        ("direction", "destination_country", "source_country", "memo")),
    sequence=(flag("direction", lambda v: v == "in"),
              onehot("channel", ("wire", "cash", "card", "internal", "statement")),
              flag("amount", near_line), flag("destination_country", lambda v: v not in (None, "CN")),
              flag("pep", lambda v: v is True)),
    generator="AmlKycGenerator",
)
