"""Corporate loan approval: loan applications keyed by company (credit risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Currency, EventBase, Id, PositiveMoney
from bankguard.features.spec import HOUR_MS, Feature, SinceLast, WindowFeature
from bankguard.models.features import (D3, D90, Categorical, Columns, Numeric, categorical, declare, log_ratio,
                                       mean_of, numbers, window)
from bankguard.models.sequences import flag, scaled
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import BASELINE, TENURE, Columns as RuleColumns, ContextRule, Values
from bankguard.rules.context import baseline_mean, habit
from bankguard.scenarios.unit import Scenario


class EnterpriseLoanEvent(EventBase):
    """A corporate loan application (entity: company)."""

    scenario: Literal["enterprise_loan"] = "enterprise_loan"
    amount: PositiveMoney
    currency: Currency
    industry_type: Literal["tech", "finance", "retail", "manufacturing"]
    credit_score: Annotated[int, Field(ge=300, le=850)]
    debt_ratio: Annotated[float, Field(ge=0, le=10)]
    annual_revenue: PositiveMoney
    collateral_value: Annotated[float, Field(ge=0)]
    branch_id: Id


class LoanStackingParams(RuleParams):
    min_applications: int = Field(3, ge=2)  # one application is no stack
    revenue_share: float = Field(0.5, gt=0)
    multiple: float = Field(3.0, gt=1)  # above the company's own habit
    min_history_days: int = Field(14, ge=1, le=88)  # the habit is measured over at most 88 days


class LoanStacking(ContextRule[LoanStackingParams]):
    id = "enterprise_loan.loan_stacking"
    scenario = "enterprise_loan"
    summary = ("More applications within 72 h than the company's 90-day habit, together above a share "
               "of its annual revenue.")
    parameters = LoanStackingParams

    def declare(self, p: LoanStackingParams) -> tuple[Feature, ...]:
        return (WindowFeature("applications_72h", "count", HOUR_MS, 72),
                WindowFeature("requested_72h", "sum", HOUR_MS, 72, value="amount"), *BASELINE, TENURE)

    def assess(self, batch: Batch, p: LoanStackingParams) -> tuple[np.ndarray, RuleColumns]:
        applications = batch.feature("applications_72h") + 1
        total = batch.feature("requested_72h") + batch.column("amount", numeric=True)
        revenue = batch.column("annual_revenue", numeric=True)
        count, _ = baseline_mean(batch)
        per_72h = habit(batch, count, applications, 3)
        mask = ((per_72h.days >= p.min_history_days) & (applications >= p.min_applications)
                & (applications > p.multiple * per_72h.usual)
                & (total > p.revenue_share * revenue))
        return mask, {"applications": applications, "usual_per_72h": per_72h.usual, "requested_total": total,
                      "annual_revenue": revenue}

    def reasons(self, v: Values, p: LoanStackingParams) -> list[str]:
        return [f"{int(v['applications'])} applications within 72 h against {v['usual_per_72h']:.1f} usually",
                (f"{v['requested_total']:,.0f} requested, {v['requested_total'] / v['annual_revenue']:.0%} "
                f"of annual revenue (limit {p.revenue_share:.0%})")]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount, revenue = numbers(c, "amount"), numbers(c, "annual_revenue")
    collateral, debt, score = numbers(c, "collateral_value"), numbers(c, "debt_ratio"), numbers(c, "credit_score")
    n = w["m_apps_90d"]
    return {
        "request_share_of_revenue": amount / np.maximum(revenue, 1.0),
        "requested_72h_share_of_revenue": (w["m_requested_72h"] + amount) / np.maximum(revenue, 1.0),
        "collateral_cover": collateral / np.maximum(amount, 1.0),
        "unsecured": (collateral <= 0).astype(np.float64),
        "debt_vs_history": np.nan_to_num(debt - mean_of(w["m_debt_sum_90d"], n), nan=0.0),
        "score_vs_history": np.nan_to_num(score - mean_of(w["m_score_sum_90d"], n), nan=0.0) / 100.0,
        "revenue_vs_history": log_ratio(revenue, mean_of(w["m_revenue_sum_90d"], n)),
    }


SCENARIO = Scenario(
    key="enterprise_loan", name="Corporate loan approval", entity="company", entity_prefix="CO",
    risk_types=("credit",), controls=("financial analysis", "collateral"),
    event=EnterpriseLoanEvent,
    rules=(LoanStacking,),
    features=declare(
        "enterprise_loan",
        (window("m_apps_72h", "count", D3), window("m_requested_72h", "sum", D3, "amount"),
         SinceLast("m_branch_seen", "branch_id"), SinceLast("m_collateral_seen", "collateral_value"),
         window("m_apps_90d", "count", D90), window("m_debt_sum_90d", "sum", D90, "debt_ratio"),
         window("m_score_sum_90d", "sum", D90, "credit_score"),
         window("m_revenue_sum_90d", "sum", D90, "annual_revenue")),
        (Numeric("credit_score"), Numeric("debt_ratio"), Numeric("annual_revenue", "log1p")),
        (categorical(EnterpriseLoanEvent, "industry_type"), Categorical("currency", ("CNY", "USD")),
         Categorical("memo", ("working capital", "equipment purchase", "trade finance",
                              "refinancing", "capacity expansion", "bridge loan"))),
        derive,
        ("request_share_of_revenue", "requested_72h_share_of_revenue", "collateral_cover",
         "unsecured", "debt_vs_history", "score_vs_history", "revenue_vs_history"),
        ("annual_revenue", "collateral_value", "debt_ratio", "credit_score")),
    sequence=(scaled("debt_ratio", 5.0), scaled("credit_score", 850.0),
              flag("collateral_value", lambda v: not v), scaled("annual_revenue", 20.0, log=True)),
    generator="EnterpriseLoanGenerator",
)
