"""Insurance claims: claims keyed by policy (fraud and operational risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from bankguard.events import Currency, Day, EventBase, PositiveMoney
from bankguard.features.spec import DAY_MS, SinceLast
from bankguard.models.features import D90, Columns, Numeric, categorical, declare, numbers, texts, window
from bankguard.models.sequences import onehot, scaled
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import Columns as RuleColumns, ContextRule, Values
from bankguard.scenarios.unit import Scenario


class InsuranceClaimsEvent(EventBase):
    """An insurance claim (entity: policy); counterparty is the provider or repair shop."""

    scenario: Literal["insurance_claims"] = "insurance_claims"
    amount: PositiveMoney
    currency: Currency
    claim_type: Literal["health", "auto", "property", "life"]
    policy_start: Day
    prior_claims: Annotated[int, Field(ge=0, le=100)]


class EarlyClaimParams(RuleParams):
    max_days: int = Field(45, ge=0)
    min_amount: float = Field(20_000.0, gt=0)


class EarlyClaim(ContextRule[EarlyClaimParams]):
    id = "insurance_claims.early_claim"
    scenario = "insurance_claims"
    severity = "medium"
    summary = "A large claim within weeks of the policy's start."
    parameters = EarlyClaimParams

    def assess(self, batch: Batch, p: EarlyClaimParams) -> tuple[np.ndarray, RuleColumns]:
        start = batch.column("policy_start").astype(str).astype("datetime64[D]").astype(np.int64)
        days = batch.column("t_ms", numeric=True) // DAY_MS - start
        amount = batch.column("amount", numeric=True)
        mask = (days <= p.max_days) & (amount >= p.min_amount)
        return mask, {"amount": amount, "days_since_policy_start": days}

    def reasons(self, v: Values, p: EarlyClaimParams) -> list[str]:
        return [f"claim of {v['amount']:,.2f} {int(v['days_since_policy_start'])} days after the policy started"]


def date_ms(values: np.ndarray) -> np.ndarray:
    """ISO dates as epoch ms (NaN when absent or unreadable); numpy parses the usual case
    an order of magnitude faster than pandas, which handles the odd value."""
    try:
        parsed = values.astype("datetime64[ms]")
    except ValueError:
        parsed = pd.to_datetime(pd.Series(values), errors="coerce").to_numpy("datetime64[ms]")
    out = parsed.astype(np.int64).astype(np.float64)
    out[np.isnat(parsed)] = np.nan
    return out


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    t_ms = numbers(c, "t_ms")
    start_ms = date_ms(texts(c, "policy_start"))
    age_days = np.clip((t_ms - start_ms) / DAY_MS, 0, None)
    prior = numbers(c, "prior_claims")
    return {
        "log_policy_age_days": np.log1p(np.nan_to_num(age_days, nan=3650.0)),
        "claims_per_year": prior / np.maximum(np.nan_to_num(age_days, nan=3650.0) / 365.0, 0.25),
    }


SCENARIO = Scenario(
    key="insurance_claims", name="Insurance claims", entity="policy", entity_prefix="POL",
    risk_types=("fraud", "operational"), controls=("automated claim review",),
    event=InsuranceClaimsEvent,
    rules=(EarlyClaim,),
    features=declare(
        "insurance_claims",
        (window("m_claims_90d", "count", D90), SinceLast("m_provider_seen", "counterparty")),
        (Numeric("prior_claims"),),
        (categorical(InsuranceClaimsEvent, "claim_type"),),
        derive, ("log_policy_age_days", "claims_per_year"), ("policy_start", "prior_claims")),
    sequence=(onehot("claim_type", ("health", "auto", "property", "life")), scaled("prior_claims", 20.0)),
    generator="InsuranceClaimsGenerator",
)
