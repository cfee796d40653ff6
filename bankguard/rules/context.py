"""Context rules: at least one per scenario, each what a risk officer of that line would
recognise, each reading the entity's recent behaviour rather than one field.

A rule *assesses* a whole batch at once, returning the rows that fire and the named
columns it decided on; those columns, at the firing row, are the alert's evidence.
Parameters come from ``context.<rule id>`` in the rules configuration; ``defaults``
documents them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bankguard.features.spec import DAY_MS, HOUR_MS, MINUTE_MS, Feature, SinceLast, Tenure, WindowFeature, Where
from bankguard.rules.base import Batch, Hit, hits_where, register, rounded
from bankguard.rules.config import RulesConfig, Severity

FIVE_MIN = 5 * MINUTE_MS
SCORES: dict[Severity, float] = {"low": 0.3, "medium": 0.6, "high": 0.85, "critical": 0.95}
BASELINE = (
    WindowFeature("amount_90d_count", "count", DAY_MS, 91, where=(Where("amount", "!=", None),)),
    WindowFeature("amount_90d_sum", "sum", DAY_MS, 91, value="abs_amount"),
)
Columns = dict[str, np.ndarray]
Params = dict[str, Any]  # a rule's parameters: its defaults updated by the configuration
Values = dict[str, Any]  # the decided-on columns at one firing row
TENURE = Tenure()


def observed_days(batch: Batch, recent_days: float) -> np.ndarray:
    """Days of the entity's history that lie before its ``recent_days`` (at most the 90-day
    baseline's remainder): the span a habit measured over those days really covers."""
    baseline_days = BASELINE[0].span_ms / DAY_MS
    return np.clip(batch.feature(TENURE.name) / DAY_MS - recent_days, 0.0, baseline_days - recent_days)


def baseline_mean(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The entity's 90-day transaction count and mean absolute amount (nan without history)."""
    count = batch.feature("amount_90d_count")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, batch.feature("amount_90d_sum") / np.maximum(count, 1), np.nan)
    return count, mean


class ContextRule:
    """Shared shape: a scenario, parameters with defaults, an assessment and its reasons."""

    id: ClassVar[str]
    version: ClassVar[int] = 1
    scenario: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = "high"
    defaults: ClassVar[Params] = {}

    def params(self, config: RulesConfig) -> Params:
        return self.defaults | config.params(self.id)

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
    def declare(self, p: Params) -> tuple[Feature, ...]:
        return ()

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        raise NotImplementedError

    def reasons(self, v: Values, p: Params) -> list[str]:
        raise NotImplementedError


@register
class LoanStacking(ContextRule):
    id = "enterprise_loan.loan_stacking"
    scenario = "enterprise_loan"
    summary = ("More applications within 72 h than the company's 90-day habit, together above a share "
               "of its annual revenue.")
    defaults: ClassVar[Params] = {"min_applications": 3, "revenue_share": 0.5, "multiple": 3.0, "min_history_days": 14}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        return (WindowFeature("applications_72h", "count", HOUR_MS, 72),
                WindowFeature("requested_72h", "sum", HOUR_MS, 72, value="amount"), *BASELINE, TENURE)

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        applications = batch.feature("applications_72h") + 1
        total = batch.feature("requested_72h") + batch.column("amount", numeric=True)
        revenue = batch.column("annual_revenue", numeric=True)
        count, _ = baseline_mean(batch)
        prior = np.maximum(count - applications + 1, 0)  # applications in the 90 days before these 72 h
        days = observed_days(batch, 3)
        usual_72h = prior * 3 / np.maximum(days, 1)
        mask = ((days >= p["min_history_days"]) & (applications >= p["min_applications"])
                & (applications > p["multiple"] * usual_72h)
                & (total > p["revenue_share"] * revenue))
        return mask, {"applications": applications, "usual_per_72h": usual_72h, "requested_total": total,
                      "annual_revenue": revenue}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"{int(v['applications'])} applications within 72 h against {v['usual_per_72h']:.1f} usually",
                (f"{v['requested_total']:,.0f} requested, {v['requested_total'] / v['annual_revenue']:.0%} "
                f"of annual revenue (limit {p['revenue_share']:.0%})")]


@register
class CardTesting(ContextRule):
    id = "credit_card.card_testing"
    scenario = "credit_card"
    summary = "Tiny purchases in the last hour, then another tiny one or one far above the card's habit."
    defaults: ClassVar[Params] = {"probe_amount": 20.0, "min_probes": 2, "spike_multiple": 5.0}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        probe = (Where("transaction_type", "==", "purchase"), Where("amount", "<=", p["probe_amount"]))
        return (WindowFeature("probes_1h", "count", FIVE_MIN, 12, where=probe), *BASELINE)

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        amount = batch.column("amount", numeric=True)
        _, mean = baseline_mean(batch)
        spike = amount >= p["spike_multiple"] * np.nan_to_num(mean, nan=np.inf)
        probes = batch.feature("probes_1h")
        mask = (probes >= p["min_probes"]) & ((amount <= p["probe_amount"]) | spike)
        return mask, {"probes_1h": probes, "amount": amount, "mean_90d": mean}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"{int(v['probes_1h'])} purchases of at most {p['probe_amount']:g} in the last hour",
                f"this one {v['amount']:,.2f}; the card's 90-day mean is {v['mean_90d']:,.2f}"]


@register
class PositionSpike(ContextRule):
    id = "forex_trading.position_spike"
    scenario = "forex_trading"
    summary = "A trade's notional far above the trader's own 90-day mean ticket."
    defaults: ClassVar[Params] = {"multiple": 5.0, "min_history": 5}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        return BASELINE

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        count, mean = baseline_mean(batch)
        notional = batch.column("amount", numeric=True)
        mask = (count >= p["min_history"]) & (notional > p["multiple"] * mean)
        return mask, {"notional": notional, "mean_90d": mean, "history_trades": count}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [(f"notional {v['notional']:,.0f} is {v['notional'] / v['mean_90d']:.1f}x the trader's "
                f"90-day mean {v['mean_90d']:,.0f} (limit {p['multiple']:g}x)")]


@register
class UnsuitableSale(ContextRule):
    id = "wealth_product.unsuitable_sale"
    scenario = "wealth_product"
    severity = "medium"
    summary = "High-risk product sold to an elderly customer with a conservative risk tolerance (KYC suitability)."
    defaults: ClassVar[Params] = {"min_product_risk": 4, "min_age": 65}

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        risk = batch.column("product_risk_level", numeric=True)
        age = batch.column("investor_age", numeric=True)
        conservative = batch.column("risk_tolerance") == "conservative"
        mask = (risk >= p["min_product_risk"]) & (age >= p["min_age"]) & conservative
        return mask, {"product_risk_level": risk, "investor_age": age}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [(f"product of risk level {int(v['product_risk_level'])} sold to a "
                f"{int(v['investor_age'])}-year-old conservative investor")]


@register
class Churning(ContextRule):
    id = "wealth_product.churning"
    scenario = "wealth_product"
    severity = "medium"
    summary = ("A customer's holdings traded far more often this week than in the weeks before (up to 12), "
               "once the customer has been around long enough to know the habit.")
    defaults: ClassVar[Params] = {"min_sales": 4, "multiple": 3.0, "min_history_days": 28}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        return (WindowFeature("sales_7d", "count", DAY_MS, 7), *BASELINE, TENURE)

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        week = batch.feature("sales_7d") + 1
        count, _ = baseline_mean(batch)
        prior = np.maximum(count - week + 1, 0)  # sales in the 90 days before this week
        days = observed_days(batch, 7)
        weekly_norm = prior * 7 / np.maximum(days, 1)
        mask = (days >= p["min_history_days"]) & (week >= p["min_sales"]) & (week > p["multiple"] * weekly_norm)
        return mask, {"sales_7d": week, "weekly_norm_90d": weekly_norm, "prior_sales_90d": prior}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [(f"{int(v['sales_7d'])} sales within 7 days against {v['weekly_norm_90d']:.1f} a week "
                f"over the weeks before")]


@register
class AccountTakeover(ContextRule):
    id = "atm_netbank.account_takeover"
    scenario = "atm_netbank"
    summary = "A transfer to a payee not seen in 90 days within an hour of repeated failed logins."
    defaults: ClassVar[Params] = {"min_failed": 3}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        failed = (Where("action", "==", "login"), Where("success", "==", False))
        return (WindowFeature("failed_logins_1h", "count", FIVE_MIN, 12, where=failed),
                SinceLast("payee_last_seen", "counterparty"))

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        failed = batch.feature("failed_logins_1h")
        new_payee = np.isinf(batch.feature("payee_last_seen"))
        mask = (batch.column("action") == "transfer") & (failed >= p["min_failed"]) & new_payee
        return mask, {"failed_logins_1h": failed, "amount": batch.column("amount", numeric=True)}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"{int(v['failed_logins_1h'])} failed logins in the last hour",
                f"transfer of {v['amount']:,.2f} to a payee not seen in 90 days"]


@register
class ExposureConcentration(ContextRule):
    id = "interbank_derivatives.exposure_concentration"
    scenario = "interbank_derivatives"
    summary = "Many deals with one bank within 6 h, each well above its usual size."
    defaults: ClassVar[Params] = {"min_deals": 4, "size_multiple": 2.0, "min_history": 5}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        return (WindowFeature("deals_6h", "count", HOUR_MS, 6),
                WindowFeature("notional_6h", "sum", HOUR_MS, 6, value="amount"), *BASELINE)

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        deals = batch.feature("deals_6h") + 1
        total = batch.feature("notional_6h") + batch.column("amount", numeric=True)
        count, mean = baseline_mean(batch)
        mask = (deals >= p["min_deals"]) & (count >= p["min_history"]) & (total / deals > p["size_multiple"] * mean)
        return mask, {"deals_6h": deals, "notional_6h": total, "mean_deal_90d": mean}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"{int(v['deals_6h'])} deals in 6 h totalling {v['notional_6h']:,.0f}",
                (f"average deal {v['notional_6h'] / v['deals_6h']:,.0f} vs the bank's 90-day mean "
                f"{v['mean_deal_90d']:,.0f}")]


@register
class Structuring(ContextRule):
    id = "aml_kyc.structuring"
    scenario = "aml_kyc"
    summary = "Several amounts just under the reporting threshold within 24 h."
    defaults: ClassVar[Params] = {"reporting_threshold": 50_000.0, "band": 0.1, "min_prior": 2}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        low = p["reporting_threshold"] * (1 - p["band"])
        near = (Where("amount", ">=", low), Where("amount", "<", p["reporting_threshold"]))
        return (WindowFeature("near_threshold_24h", "count", HOUR_MS, 24, where=near),)

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        amount = batch.column("amount", numeric=True)
        near = (amount >= p["reporting_threshold"] * (1 - p["band"])) & (amount < p["reporting_threshold"])
        prior = batch.feature("near_threshold_24h")
        return near & (prior >= p["min_prior"]), {"near_threshold_24h": prior + 1, "amount": amount}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"{int(v['near_threshold_24h'])} amounts just under {p['reporting_threshold']:,.0f} within 24 h"]


@register
class PepCorridor(ContextRule):
    id = "aml_kyc.pep_high_risk_corridor"
    scenario = "aml_kyc"
    summary = "A politically exposed person sends well above habit to a high-risk jurisdiction."
    defaults: ClassVar[Params] = {"countries": ["IR", "KP", "MM", "AF", "SY", "YE", "KH", "PA", "KY", "VG"],
                                  "multiple": 3.0}

    def declare(self, p: Params) -> tuple[Feature, ...]:
        return BASELINE

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        _, mean = baseline_mean(batch)
        amount = np.abs(batch.column("amount", numeric=True))
        risky = np.isin(batch.column("destination_country"), list(p["countries"]))
        above = ~(amount <= p["multiple"] * mean)  # no history counts as above
        mask = (batch.column("pep") == True) & risky & (batch.column("direction") == "out") & above  # noqa: E712
        return mask, {"amount": amount, "mean_90d": mean}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"politically exposed person sends {v['amount']:,.2f} to a high-risk jurisdiction",
                f"customer's 90-day mean {v['mean_90d']:,.2f}"]


@register
class EarlyClaim(ContextRule):
    id = "insurance_claims.early_claim"
    scenario = "insurance_claims"
    severity = "medium"
    summary = "A large claim within weeks of the policy's start."
    defaults: ClassVar[Params] = {"max_days": 45, "min_amount": 20_000.0}

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        start = batch.column("policy_start").astype(str).astype("datetime64[D]").astype(np.int64)
        days = batch.column("t_ms", numeric=True) // DAY_MS - start
        amount = batch.column("amount", numeric=True)
        mask = (days <= p["max_days"]) & (amount >= p["min_amount"])
        return mask, {"amount": amount, "days_since_policy_start": days}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [f"claim of {v['amount']:,.2f} {int(v['days_since_policy_start'])} days after the policy started"]


@register
class KillChain(ContextRule):
    id = "cyber_security.kill_chain"
    scenario = "cyber_security"
    summary = "Data leaving a host within an hour of phishing and malware detections on it."

    def declare(self, p: Params) -> tuple[Feature, ...]:
        return tuple(WindowFeature(f"{threat}_1h", "count", FIVE_MIN, 12, where=(Where("threat_type", "==", threat),))
                     for threat in ("phishing", "malware"))

    def assess(self, batch: Batch, p: Params) -> tuple[np.ndarray, Columns]:
        phishing, malware = batch.feature("phishing_1h"), batch.feature("malware_1h")
        mask = (batch.column("threat_type") == "insider") & (phishing > 0) & (malware > 0)
        return mask, {"phishing_1h": phishing, "malware_1h": malware,
                      "bytes_out": batch.column("bytes_out", numeric=True)}

    def reasons(self, v: Values, p: Params) -> list[str]:
        return [(f"exfiltration of {v['bytes_out']:,.0f} bytes after {int(v['phishing_1h'])} phishing and "
                f"{int(v['malware_1h'])} malware detections within the hour")]
