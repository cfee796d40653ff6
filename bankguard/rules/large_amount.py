"""The large-amount rule, exactly as the business rule states it.

A transaction with ``abs(amount) >= amount_threshold`` is *large*. Its *history* is the
account's transactions from the start of the UTC day ``history_days`` back up to,
not including, its own time. It is an *outlier* when the history is not empty, its
mean absolute amount is not 0 and ``abs(amount) > mean * outlier_multiplier``. It has
a *background* when a reasonable keyword appears in the memo or counterparty. A large
transaction with a background that is not an outlier is fine; every other large
transaction is an anomaly: ``medium`` when it had a background (so it was an outlier)
and no high-risk keyword, ``high`` otherwise; configured tiers raise the severity of
very large amounts.
"""

from __future__ import annotations

import numpy as np

from bankguard.features.spec import DAY_MS, Feature, WindowFeature, Where
from bankguard.rules.base import Batch, Hit, hits_where, register, rounded
from bankguard.rules.config import SCORES, SEVERITY_RANK, LargeAmountConfig, RulesConfig, Severity
from bankguard.rules.keywords import find_keywords

HAS_AMOUNT = Where("amount", "!=", None)


def history_features(config: LargeAmountConfig) -> tuple[WindowFeature, WindowFeature]:
    days = config.history_days
    return (
        WindowFeature(f"amount_{days}d_count", "count", DAY_MS, days + 1, where=(HAS_AMOUNT,)),
        WindowFeature(f"amount_{days}d_sum", "sum", DAY_MS, days + 1, value="abs_amount"),
    )


@register
class LargeAmountRule:
    id = "large_amount"
    version = 1
    summary = ("Large amount (>= threshold) that is an outlier against the account's history "
               "or lacks a reasonable background in memo/counterparty.")

    def applies_to(self, scenario: str, config: RulesConfig) -> bool:
        return config.large_amount.enabled and scenario in config.large_amount.scenarios

    def features(self, config: RulesConfig) -> tuple[Feature, ...]:
        return history_features(config.large_amount)

    def evaluate(self, batch: Batch, config: RulesConfig) -> list[Hit]:
        cfg = config.large_amount
        count_feature, sum_feature = history_features(cfg)
        size = np.abs(batch.column("amount", numeric=True))
        count = batch.feature(count_feature.name)
        total = batch.feature(sum_feature.name)
        large = size >= cfg.amount_threshold  # nan compares False
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        outlier = (count > 0) & (mean != 0) & (size > mean * cfg.outlier_multiplier)

        memos, counterparties = batch.column("memo"), batch.column("counterparty")

        def decide(row: int) -> Hit | None:
            memo, counterparty = memos[row], counterparties[row]
            background = find_keywords(cfg.reasonable_keywords, memo, counterparty)
            risky = find_keywords(cfg.high_risk_keywords, memo, counterparty)
            if background and not outlier[row]:
                return None
            severity: Severity = "medium" if background and not risky else "high"
            tier_hit = [t for t in cfg.tiers if size[row] >= t.threshold]
            for tier in tier_hit:
                if SEVERITY_RANK[tier.severity] > SEVERITY_RANK[severity]:
                    severity = tier.severity
            return Hit(row, self.id, self.version, severity, SCORES[severity],
                       _reasons(cfg, size[row], count[row], mean[row], bool(outlier[row]),
                                background, risky),
                       rounded([
                           ("amount", size[row]), ("threshold", cfg.amount_threshold),
                           ("history_days", cfg.history_days), ("history_count", count[row]),
                           ("history_mean", mean[row]),
                           ("ratio_to_mean", size[row] / mean[row] if count[row] > 0 and mean[row] else None),
                           ("outlier_multiplier", cfg.outlier_multiplier),
                           ("outlier", bool(outlier[row])), ("background_keywords", background),
                           ("high_risk_keywords", risky),
                           ("tier", max((t.threshold for t in tier_hit), default=None)),
                       ]))

        return hits_where(large, decide)


def _reasons(cfg: LargeAmountConfig, size: float, count: float, mean: float, outlier: bool,
             background: list[str], risky: list[str]) -> tuple[str, ...]:
    reasons = [f"amount {size:,.2f} >= threshold {cfg.amount_threshold:,.0f}"]
    if count == 0:
        reasons.append(f"no history in the previous {cfg.history_days} days")
    elif outlier:
        reasons.append(f"{size / mean:.1f}x the {cfg.history_days}-day mean {mean:,.2f} "
                       f"({int(count)} transactions; outlier above {cfg.outlier_multiplier:g}x)")
    else:
        reasons.append(f"within {cfg.outlier_multiplier:g}x the {cfg.history_days}-day mean {mean:,.2f}")
    if background:
        reasons.append(f"reasonable background: {', '.join(background)}")
    else:
        reasons.append("no reasonable background in memo or counterparty")
    if risky:
        reasons.append(f"high-risk keywords: {', '.join(risky)}")
    return tuple(reasons)
