"""Card issuing and use: authorisations keyed by card (fraud, credit and operational risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Country, Currency, EventBase, Id, NonNegativeMoney
from bankguard.features.spec import Feature, SinceLast, WindowFeature, Where
from bankguard.models.features import D1, D30, H1, Categorical, Columns, categorical, declare, numbers, window
from bankguard.models.sequences import flag, onehot
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import BASELINE, FIVE_MIN, Columns as RuleColumns, ContextRule, Values, baseline_mean
from bankguard.scenarios.unit import Scenario


class CreditCardEvent(EventBase):
    """A card authorisation (entity: card); counterparty is the merchant or terminal.

    Card, counterparty, amount and time are what every card data set has, so they are
    what the scoring needs; the rest is optional (absent reads as unknown: an other
    category, a device never seen). An amount of 0 is a card verification.
    """

    scenario: Literal["credit_card"] = "credit_card"
    amount: NonNegativeMoney
    currency: Currency | None = None
    transaction_type: Literal["purchase", "cash_advance", "balance_transfer"] | None = None
    device_type: Literal["mobile", "desktop", "tablet"] | None = None
    device_id: Id | None = None
    merchant_category: Annotated[str, Field(pattern=r"^\d{4}$")] | None = None
    country: Country | None = None
    ip_address: Annotated[str, Field(max_length=64)] | None = None


class CardTestingParams(RuleParams):
    probe_amount: float = Field(20.0, gt=0)
    min_probes: int = Field(2, ge=1)
    spike_multiple: float = Field(5.0, gt=1)  # above the card's own mean


class CardTesting(ContextRule[CardTestingParams]):
    id = "credit_card.card_testing"
    scenario = "credit_card"
    summary = "Tiny purchases in the last hour, then another tiny one or one far above the card's habit."
    parameters = CardTestingParams

    def declare(self, p: CardTestingParams) -> tuple[Feature, ...]:
        probe = (Where("transaction_type", "==", "purchase"), Where("amount", "<=", p.probe_amount))
        return (WindowFeature("probes_1h", "count", FIVE_MIN, 12, where=probe), *BASELINE)

    def assess(self, batch: Batch, p: CardTestingParams) -> tuple[np.ndarray, RuleColumns]:
        amount = batch.column("amount", numeric=True)
        _, mean = baseline_mean(batch)
        spike = amount >= p.spike_multiple * np.nan_to_num(mean, nan=np.inf)
        probes = batch.feature("probes_1h")
        mask = (probes >= p.min_probes) & ((amount <= p.probe_amount) | spike)
        return mask, {"probes_1h": probes, "amount": amount, "mean_90d": mean}

    def reasons(self, v: Values, p: CardTestingParams) -> list[str]:
        return [f"{int(v['probes_1h'])} purchases of at most {p.probe_amount:g} in the last hour",
                f"this one {v['amount']:,.2f}; the card's 90-day mean is {v['mean_90d']:,.2f}"]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = numbers(c, "amount")
    return {"small_ticket": (amount < 30).astype(np.float64)}


SCENARIO = Scenario(
    key="credit_card", name="Card issuing and use", entity="card", entity_prefix="CARD",
    risk_types=("fraud", "credit", "operational"), controls=("limits", "anti-fraud model"),
    event=CreditCardEvent,
    rules=(CardTesting,),
    features=declare(
        "credit_card",
        (SinceLast("m_device_seen", "device_id"), SinceLast("m_country_seen", "country"),
         SinceLast("m_ip_seen", "ip_address"), SinceLast("m_merchant_seen", "counterparty"),
         window("m_small_1h", "count", H1, where=(Where("amount", "<", 30),)),
         window("m_cash_adv_1d", "count", D1, where=(Where("transaction_type", "==", "cash_advance"),)),
         window("m_cash_adv_30d", "count", D30, where=(Where("transaction_type", "==", "cash_advance"),))),
        (),
        (categorical(CreditCardEvent, "transaction_type"), categorical(CreditCardEvent, "device_type"),
         Categorical("merchant_category", ("5411", "5812", "5541", "5311", "5912", "4111", "5814",
                                           "5999", "5732", "7011", "5944", "5816", "4829", "6011")),
         Categorical("country", ("CN", "HK", "SG", "US", "JP", "TH", "FR"))),
        derive, ("small_ticket",)),
    sequence=(onehot("transaction_type", ("purchase", "cash_advance", "balance_transfer")),
              onehot("device_type", ("mobile", "desktop", "tablet")),
              onehot("merchant_category", ("5999", "5732", "5944", "5816", "4829", "6011")),
              flag("country", lambda v: v == "CN")),
    generator="CreditCardGenerator",
)
