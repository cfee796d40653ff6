"""What the models read, per scenario: one declaration the trainer and the stream share.

A scenario's model input is built in two steps, so that the stream can reproduce it
exactly without ever holding event lists:

1. *Window features* (``ScenarioFeatures.windows``): point-in-time aggregates of the
   entity's earlier events, declared with :mod:`bankguard.features.spec`. Training
   computes them with ``vectorized.compute_features``; the stream worker keeps them
   in its per-entity ``EntityState`` (same declarations, a test holds the two equal).
   Names start with ``m_`` so they never clash with the rules' features when the
   worker merges both tuples into one state.
2. *The model matrix* (:func:`model_matrix`): the event's own fields (numeric
   transforms, one-hot categories from a fixed vocabulary), ratios of the event to
   its window features, and the counterparty's known fraud rate. A pure function
   of (events, window values, counterparty rates), called by training and scoring.

The manifest of every trained artifact stores :func:`feature_signature`; loading
refuses an artifact whose signature differs from the code's, so a changed feature
can never silently feed a model trained on another definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from bankguard.events import EVENT_MODELS
from bankguard.features.spec import DAY_MS, HOUR_MS, MINUTE_MS, Feature, SinceLast, WindowFeature, Where
from bankguard.scenarios import SCENARIOS

FEATURE_VERSION = 2  # bump when a transform in this module changes meaning
FIVE_MIN = 5 * MINUTE_MS
OTHER = "<other>"
NEVER_SECONDS = 90 * 86_400.0  # SinceLast horizon: "never seen" reads as beyond it

Columns = Mapping[str, Any]  # field name -> array-like of raw event values
Derive = Callable[[Columns, Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Numeric:
    """An event field used as a number: ``raw``, ``log1p`` of its absolute value, or ``bool``."""

    field: str
    transform: Literal["raw", "log1p", "bool"] = "raw"

    @property
    def column(self) -> str:
        return f"{self.field}" if self.transform == "raw" else f"{self.transform}_{self.field}"


@dataclass(frozen=True)
class Categorical:
    """An event field one-hot encoded over a fixed vocabulary, plus one column for the rest."""

    field: str
    vocab: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [f"{self.field}={value}" for value in (*self.vocab, OTHER)]


@dataclass(frozen=True)
class ScenarioFeatures:
    """Everything a scenario's models read, in a fixed column order."""

    scenario: str
    windows: tuple[Feature, ...]
    numeric: tuple[Numeric, ...] = ()
    categorical: tuple[Categorical, ...] = ()
    derived: tuple[str, ...] = ()  # column names produced by ``derive``
    derive: Derive | None = field(default=None, compare=False, repr=False)
    amount: bool = True  # the scenario has money amounts
    counterparty: str | None = "counterparty"  # field whose known fraud rate is a feature

    @property
    def columns(self) -> list[str]:
        cols = list(_generic_names(self))
        cols += [spec.column for spec in self.numeric]
        cols += self.derived
        for cat in self.categorical:
            cols += cat.columns
        if self.counterparty:
            cols.append("cp_fraud_rate")
        return cols

    @property
    def raw_fields(self) -> list[str]:
        """Event fields the matrix reads directly (besides the window features)."""
        fields = ["amount", "t_ms"] if self.amount else ["t_ms"]
        fields += [spec.field for spec in self.numeric] + [cat.field for cat in self.categorical]
        return list(dict.fromkeys(fields + list(_DERIVED_FIELDS.get(self.scenario, ()))))


def _enum(scenario: str, name: str) -> tuple[str, ...]:
    """The allowed values of a Literal field of the scenario's event schema (its vocabulary)."""
    annotation = EVENT_MODELS[scenario].model_fields[name].annotation
    return tuple(str(value) for value in get_args(annotation))


def _span(bucket_ms: int, buckets: int) -> tuple[int, int]:
    return bucket_ms, buckets


SPANS = {"1h": _span(FIVE_MIN, 12), "1d": _span(HOUR_MS, 24), "7d": _span(DAY_MS, 7),
         "30d": _span(DAY_MS, 30)}
HAS_AMOUNT = (Where("amount", "!=", None),)


def activity_windows(amount: bool) -> tuple[Feature, ...]:
    """Counts (and amount sums) over the last hour, day, 7 and 30 days, and the gap since
    the entity's previous event: the velocity and habit every scenario's patterns break."""
    out: list[Feature] = [WindowFeature(f"m_cnt_{span}", "count", b, n) for span, (b, n) in SPANS.items()]
    out.append(SinceLast("m_since_prev", "entity_id"))
    if amount:
        for span, (b, n) in SPANS.items():
            out.append(WindowFeature(f"m_amt_n_{span}", "count", b, n, where=HAS_AMOUNT))
            out.append(WindowFeature(f"m_amt_sum_{span}", "sum", b, n, value="abs_amount"))
        out.append(WindowFeature("m_amt_max_30d", "max", DAY_MS, 30, value="abs_amount"))
    return tuple(out)


def _generic_names(spec: ScenarioFeatures) -> tuple[str, ...]:
    names = ["log_cnt_1h", "log_cnt_1d", "log_cnt_7d", "log_cnt_30d", "burst_1h", "burst_1d",
             "log_since_prev", "first_event"]
    if spec.amount:
        names += ["has_amount", "log_amount", "amt_ratio_7d", "amt_ratio_30d", "amt_vs_max_30d",
                  "log_amt_sum_1h", "spend_1d_vs_30d"]
    for f in spec.windows:
        if isinstance(f, SinceLast) and f.name != "m_since_prev":
            names.append(f"log_since_{f.name[2:]}")
        elif isinstance(f, WindowFeature) and not f.name.startswith(("m_cnt_", "m_amt_")):
            names.append(f"log_{f.name[2:]}")
    return tuple(names)


# -- per-scenario declarations ---------------------------------------------------------

def _w(name: str, agg: str, span: tuple[int, int], value: str | None = None,
       where: tuple[Where, ...] = ()) -> WindowFeature:
    return WindowFeature(name, agg, span[0], span[1], value=value, where=where)  # type: ignore[arg-type]


H1, H6, D1, D3, D30, D90 = (FIVE_MIN, 12), (HOUR_MS, 6), (HOUR_MS, 24), (HOUR_MS, 72), (DAY_MS, 30), (DAY_MS, 90)
M10 = (MINUTE_MS, 10)


def _num(columns: Columns, name: str) -> np.ndarray:
    values = np.asarray(columns[name])
    try:  # numbers, None (NaN) and numeric strings: numpy converts them as pandas would
        return values.astype(np.float64)
    except (TypeError, ValueError):  # a non-numeric string somewhere: NaN for it alone
        return pd.to_numeric(pd.Series(values.astype(object)), errors="coerce").to_numpy(np.float64)


def _text(columns: Columns, name: str) -> np.ndarray:
    return np.asarray(columns[name], dtype=object)


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _log_ratio(value: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """log((|value|+1)/(reference+1)), 0 where the reference is unknown (no history)."""
    out = np.log1p(np.abs(value)) - np.log1p(np.abs(np.nan_to_num(reference, nan=0.0)))
    return np.where(np.isnan(reference) | np.isnan(value), 0.0, out)


def _derive_enterprise_loan(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount, revenue = _num(c, "amount"), _num(c, "annual_revenue")
    collateral, debt, score = _num(c, "collateral_value"), _num(c, "debt_ratio"), _num(c, "credit_score")
    n = w["m_apps_90d"]
    return {
        "request_share_of_revenue": amount / np.maximum(revenue, 1.0),
        "requested_72h_share_of_revenue": (w["m_requested_72h"] + amount) / np.maximum(revenue, 1.0),
        "collateral_cover": collateral / np.maximum(amount, 1.0),
        "unsecured": (collateral <= 0).astype(np.float64),
        "debt_vs_history": np.nan_to_num(debt - _mean(w["m_debt_sum_90d"], n), nan=0.0),
        "score_vs_history": np.nan_to_num(score - _mean(w["m_score_sum_90d"], n), nan=0.0) / 100.0,
        "revenue_vs_history": _log_ratio(revenue, _mean(w["m_revenue_sum_90d"], n)),
    }


def _derive_credit_card(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = _num(c, "amount")
    return {"small_ticket": (amount < 30).astype(np.float64)}


def _derive_atm_netbank(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = np.nan_to_num(_num(c, "amount"), nan=0.0)
    action = _text(c, "action")
    withdrawal = (action == "withdrawal").astype(np.float64)
    return {"atm_cash_1h_with_this": np.log1p(w["m_cash_sum_1h"] + withdrawal * amount),
            "atm_cash_1d_with_this": np.log1p(w["m_cash_sum_1d"] + withdrawal * amount)}


def _derive_cyber_security(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    bytes_out = _num(c, "bytes_out")
    return {"bytes_vs_30d": _log_ratio(bytes_out, _mean(w["m_bytes_sum_30d"], w["m_cnt_30d"])),
            "systems_vs_1h_max": np.log1p(_num(c, "systems_affected")) - np.log1p(w["m_systems_max_1h"])}


def _derive_forex_trading(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = _num(c, "amount")
    buy = (_text(c, "side") == "buy").astype(np.float64)
    recent_mean = _mean(w["m_notional_10m"], w["m_n_10m"])
    return {
        "size_vs_10m_mean": np.abs(_log_ratio(amount, recent_mean)),
        "opposite_side_1h": np.log1p(np.where(buy > 0, w["m_sells_1h"], w["m_buys_1h"])),
        "same_side_1h": np.log1p(np.where(buy > 0, w["m_buys_1h"], w["m_sells_1h"])),
    }


TOLERANCE_LEVEL = {"conservative": 1.0, "balanced": 3.0, "aggressive": 5.0}


def _derive_wealth_product(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    memo = _text(c, "memo")
    tolerance = np.array([TOLERANCE_LEVEL.get(t, 3.0) for t in _text(c, "risk_tolerance")])
    age = _num(c, "investor_age")
    return {
        "is_switch": np.array([isinstance(m, str) and "switch from" in m for m in memo], dtype=np.float64),
        "risk_above_tolerance": _num(c, "product_risk_level") - tolerance,
        "elderly": (age >= 65).astype(np.float64),
    }


def _derive_interbank(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    tenor = _num(c, "tenor_days")
    return {"log_tenor": np.log1p(tenor),
            "notional_6h_vs_30d": _log_ratio(w["m_notional_6h"] + np.abs(_num(c, "amount")),
                                             _mean(w["m_amt_sum_30d"], w["m_amt_n_30d"]))}


def _derive_aml_kyc(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = np.abs(_num(c, "amount"))
    outgoing = (_text(c, "direction") == "out").astype(np.float64)
    dest, source = _text(c, "destination_country"), _text(c, "source_country")
    return {
        "near_threshold": ((amount >= 45_000) & (amount < 50_000)).astype(np.float64),
        "out_vs_in_24h": outgoing * _log_ratio(w["m_out_sum_24h"] + amount, w["m_in_sum_24h"]),
        "cross_border": ((dest != "CN") | (source != "CN")).astype(np.float64),
        "memo_blank": np.array([m is None or m == "" for m in _text(c, "memo")], dtype=np.float64),
    }


def _date_ms(values: np.ndarray) -> np.ndarray:
    """ISO dates as epoch ms (NaN when absent or unreadable); numpy parses the usual case
    an order of magnitude faster than pandas, which handles the odd value."""
    try:
        parsed = values.astype("datetime64[ms]")
    except ValueError:
        parsed = pd.to_datetime(pd.Series(values), errors="coerce").to_numpy("datetime64[ms]")
    out = parsed.astype(np.int64).astype(np.float64)
    out[np.isnat(parsed)] = np.nan
    return out


def _derive_insurance(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    t_ms = _num(c, "t_ms")
    start_ms = _date_ms(_text(c, "policy_start"))
    age_days = np.clip((t_ms - start_ms) / DAY_MS, 0, None)
    prior = _num(c, "prior_claims")
    return {
        "log_policy_age_days": np.log1p(np.nan_to_num(age_days, nan=3650.0)),
        "claims_per_year": prior / np.maximum(np.nan_to_num(age_days, nan=3650.0) / 365.0, 0.25),
    }


_DERIVED_FIELDS = {
    "enterprise_loan": ("annual_revenue", "collateral_value", "debt_ratio", "credit_score"),
    "credit_card": (),
    "atm_netbank": ("action",),
    "cyber_security": ("bytes_out", "systems_affected"),
    "forex_trading": ("side",),
    "wealth_product": ("memo", "risk_tolerance", "investor_age", "product_risk_level"),
    "interbank_derivatives": ("tenor_days",),
    "aml_kyc": ("direction", "destination_country", "source_country", "memo"),
    "insurance_claims": ("policy_start", "prior_claims"),
}


def _spec(scenario: str, extra: tuple[Feature, ...], numeric: tuple[Numeric, ...],
          categorical: tuple[Categorical, ...], derive: Derive | None, derived: tuple[str, ...],
          amount: bool = True, counterparty: str | None = "counterparty") -> ScenarioFeatures:
    return ScenarioFeatures(scenario, activity_windows(amount) + extra, numeric, categorical,
                            derived, derive, amount, counterparty)


def _cat(scenario: str, name: str) -> Categorical:
    return Categorical(name, _enum(scenario, name))


def _build_specs() -> dict[str, ScenarioFeatures]:
    specs = [
        _spec("enterprise_loan",
              (_w("m_apps_72h", "count", D3), _w("m_requested_72h", "sum", D3, "amount"),
               SinceLast("m_branch_seen", "branch_id"), SinceLast("m_collateral_seen", "collateral_value"),
               _w("m_apps_90d", "count", D90), _w("m_debt_sum_90d", "sum", D90, "debt_ratio"),
               _w("m_score_sum_90d", "sum", D90, "credit_score"),
               _w("m_revenue_sum_90d", "sum", D90, "annual_revenue")),
              (Numeric("credit_score"), Numeric("debt_ratio"), Numeric("annual_revenue", "log1p")),
              (_cat("enterprise_loan", "industry_type"), Categorical("currency", ("CNY", "USD")),
               Categorical("memo", ("working capital", "equipment purchase", "trade finance",
                                    "refinancing", "capacity expansion", "bridge loan"))),
              _derive_enterprise_loan,
              ("request_share_of_revenue", "requested_72h_share_of_revenue", "collateral_cover",
               "unsecured", "debt_vs_history", "score_vs_history", "revenue_vs_history")),
        _spec("credit_card",
              (SinceLast("m_device_seen", "device_id"), SinceLast("m_country_seen", "country"),
               SinceLast("m_ip_seen", "ip_address"), SinceLast("m_merchant_seen", "counterparty"),
               _w("m_small_1h", "count", H1, where=(Where("amount", "<", 30),)),
               _w("m_cash_adv_1d", "count", D1, where=(Where("transaction_type", "==", "cash_advance"),)),
               _w("m_cash_adv_30d", "count", D30, where=(Where("transaction_type", "==", "cash_advance"),))),
              (),
              (_cat("credit_card", "transaction_type"), _cat("credit_card", "device_type"),
               Categorical("merchant_category", ("5411", "5812", "5541", "5311", "5912", "4111", "5814",
                                                 "5999", "5732", "7011", "5944", "5816", "4829", "6011")),
               Categorical("country", ("CN", "HK", "SG", "US", "JP", "TH", "FR"))),
              _derive_credit_card, ("small_ticket",)),
        _spec("forex_trading",
              (_w("m_buys_1h", "count", H1, where=(Where("side", "==", "buy"),)),
               _w("m_sells_1h", "count", H1, where=(Where("side", "==", "sell"),)),
               _w("m_n_10m", "count", M10), _w("m_notional_10m", "sum", M10, "amount"),
               _w("m_notional_1h", "sum", H1, "amount"), SinceLast("m_counterparty_seen", "counterparty"),
               SinceLast("m_pair_seen", "currency_pair")),
              (Numeric("volatility"),),
              (_cat("forex_trading", "currency_pair"), _cat("forex_trading", "side"),
               Categorical("desk", ("FX-SPOT-SH", "FX-SPOT-HK", "FX-FWD-SH", "FX-G10-LDN", "FX-EM-SG")),
               Categorical("memo", ("client flow", "hedge", "spot", "rebalance", "stop loss"))),
              _derive_forex_trading, ("size_vs_10m_mean", "opposite_side_1h", "same_side_1h")),
        _spec("wealth_product",
              (_w("m_advisor_sales_7d", "count", (DAY_MS, 7), where=(Where("channel", "==", "advisor"),)),
               _w("m_high_risk_30d", "count", D30, where=(Where("product_risk_level", ">=", 4),)),
               SinceLast("m_advisor_seen", "counterparty")),
              (Numeric("product_risk_level"), Numeric("investor_age")),
              (_cat("wealth_product", "product_type"), _cat("wealth_product", "risk_tolerance"),
               _cat("wealth_product", "channel")),
              _derive_wealth_product, ("is_switch", "risk_above_tolerance", "elderly")),
        _spec("atm_netbank",
              (SinceLast("m_device_seen", "device_id"), SinceLast("m_ip_seen", "ip_address"),
               SinceLast("m_payee_seen", "counterparty"),
               _w("m_failed_1h", "count", H1, where=(Where("success", "==", False),)),
               _w("m_failed_1d", "count", D1, where=(Where("success", "==", False),)),
               _w("m_withdrawals_1h", "count", H1, where=(Where("action", "==", "withdrawal"),)),
               _w("m_cash_sum_1h", "sum", H1, "abs_amount", where=(Where("action", "==", "withdrawal"),)),
               _w("m_cash_sum_1d", "sum", D1, "abs_amount", where=(Where("action", "==", "withdrawal"),)),
               _w("m_transfer_sum_1d", "sum", D1, "abs_amount", where=(Where("action", "==", "transfer"),))),
              (Numeric("login_attempts"), Numeric("success", "bool")),
              (_cat("atm_netbank", "access_method"), _cat("atm_netbank", "device_type"),
               _cat("atm_netbank", "action"), Categorical("country", ("CN", "HK", "MO", "SG", "JP"))),
              _derive_atm_netbank, ("atm_cash_1h_with_this", "atm_cash_1d_with_this")),
        _spec("interbank_derivatives",
              (_w("m_deals_6h", "count", H6), _w("m_notional_6h", "sum", H6, "amount")),
              (Numeric("interest_rate"),),
              (_cat("interbank_derivatives", "derivative_type"), _cat("interbank_derivatives", "direction"),
               Categorical("currency", ("CNY", "USD")),
               Categorical("tenor_days", ("1", "7", "14", "30", "90", "180", "365", "730", "1825"))),
              _derive_interbank, ("log_tenor", "notional_6h_vs_30d"), counterparty=None),
        _spec("aml_kyc",
              (_w("m_near_threshold_24h", "count", D1,
                  where=(Where("amount", ">=", 45_000), Where("amount", "<", 50_000))),
               _w("m_in_24h", "count", D1, where=(Where("direction", "==", "in"),)),
               _w("m_in_sum_24h", "sum", D1, "abs_amount", where=(Where("direction", "==", "in"),)),
               _w("m_out_6h", "count", H6, where=(Where("direction", "==", "out"),)),
               _w("m_out_sum_24h", "sum", D1, "abs_amount", where=(Where("direction", "==", "out"),)),
               _w("m_cash_in_24h", "count", D1, where=(Where("channel", "==", "cash"),)),
               SinceLast("m_counterparty_seen", "counterparty")),
              (Numeric("pep", "bool"),),
              (_cat("aml_kyc", "direction"), _cat("aml_kyc", "channel"), Categorical("currency", ("CNY", "USD")),
               Categorical("destination_country", ("CN", "HK", "US", "SG", "GB", "AU", "JP", "CA", "AE", "VG",
                                                   "KH", "PA", "KY", "MM", "IR")),
               Categorical("memo", ("消费", "转账", "水电费", "还款", "理财", "保险", "租金", "货款", "报销", "奖金",
                                    "学费", "医疗费", "ATM取款", "现金存入", "购房款", "装修款", "年终奖", "工资",
                                    "投资款", "咨询费", "虚拟货币", "比特币", "USDT充值", "赌资", "博彩"))),
              _derive_aml_kyc, ("near_threshold", "out_vs_in_24h", "cross_border", "memo_blank")),
        _spec("insurance_claims",
              (_w("m_claims_90d", "count", D90), SinceLast("m_provider_seen", "counterparty")),
              (Numeric("prior_claims"),),
              (_cat("insurance_claims", "claim_type"),),
              _derive_insurance, ("log_policy_age_days", "claims_per_year")),
        _spec("cyber_security",
              tuple(_w(f"m_{threat}_1h", "count", H1, where=(Where("threat_type", "==", threat),))
                    for threat in _enum("cyber_security", "threat_type"))
              + (_w("m_n_10m", "count", M10), _w("m_systems_max_1h", "max", H1, "systems_affected"),
                 _w("m_severity_max_1h", "max", H1, "severity_score"),
                 _w("m_bytes_sum_30d", "sum", D30, "bytes_out"),
                 SinceLast("m_remote_seen", "counterparty")),
              (Numeric("severity_score"), Numeric("systems_affected", "log1p"), Numeric("bytes_out", "log1p")),
              (_cat("cyber_security", "threat_type"), _cat("cyber_security", "detector")),
              _derive_cyber_security, ("bytes_vs_30d", "systems_vs_1h_max"), amount=False),
    ]
    out = {spec.scenario: spec for spec in specs}
    assert set(out) == set(SCENARIOS), "every scenario declares its model features"
    return out


SPECS: dict[str, ScenarioFeatures] = _build_specs()


def scenario_features(scenario: str) -> ScenarioFeatures:
    """The model feature declaration of a scenario."""
    return SPECS[scenario]


def window_features(scenario: str) -> tuple[Feature, ...]:
    """The feature tuple the stream worker adds to the entity state of ``scenario``."""
    return SPECS[scenario].windows


# -- the matrix --------------------------------------------------------------------------

def _since(values: np.ndarray) -> np.ndarray:
    seconds = np.where(np.isfinite(values), values / 1000.0, np.inf)
    return np.where(np.isfinite(seconds), np.log1p(np.minimum(seconds, NEVER_SECONDS)),
                    math.log1p(NEVER_SECONDS) + 1.0)


def _generic(spec: ScenarioFeatures, c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    cnt30 = w["m_cnt_30d"]
    out = {
        "log_cnt_1h": np.log1p(w["m_cnt_1h"]), "log_cnt_1d": np.log1p(w["m_cnt_1d"]),
        "log_cnt_7d": np.log1p(w["m_cnt_7d"]), "log_cnt_30d": np.log1p(cnt30),
        "burst_1h": np.log1p(w["m_cnt_1h"]) - np.log1p(cnt30 / 720.0),
        "burst_1d": np.log1p(w["m_cnt_1d"]) - np.log1p(cnt30 / 30.0),
        "log_since_prev": _since(w["m_since_prev"]),
        "first_event": (~np.isfinite(w["m_since_prev"])).astype(np.float64),
    }
    if spec.amount:
        amount = np.abs(_num(c, "amount"))
        present = ~np.isnan(amount)
        value = np.where(present, amount, np.nan)
        out |= {
            "has_amount": present.astype(np.float64),
            "log_amount": np.log1p(np.nan_to_num(amount, nan=0.0)),
            "amt_ratio_7d": _log_ratio(value, _mean(w["m_amt_sum_7d"], w["m_amt_n_7d"])),
            "amt_ratio_30d": _log_ratio(value, _mean(w["m_amt_sum_30d"], w["m_amt_n_30d"])),
            "amt_vs_max_30d": _log_ratio(value, np.where(w["m_amt_n_30d"] > 0, w["m_amt_max_30d"], np.nan)),
            "log_amt_sum_1h": np.log1p(w["m_amt_sum_1h"]),
            "spend_1d_vs_30d": _log_ratio(w["m_amt_sum_1d"] + np.nan_to_num(amount, nan=0.0),
                                          np.where(w["m_amt_n_30d"] > 0, w["m_amt_sum_30d"] / 30.0, np.nan)),
        }
    for feature in spec.windows:
        if isinstance(feature, SinceLast) and feature.name != "m_since_prev":
            out[f"log_since_{feature.name[2:]}"] = _since(w[feature.name])
        elif isinstance(feature, WindowFeature) and not feature.name.startswith(("m_cnt_", "m_amt_")):
            out[f"log_{feature.name[2:]}"] = np.sign(w[feature.name]) * np.log1p(np.abs(w[feature.name]))
    return out


def _numeric(spec: Numeric, c: Columns) -> np.ndarray:
    if spec.transform == "bool":
        return np.array([1.0 if v is True or v == 1 else 0.0 for v in _text(c, spec.field)])
    values = np.nan_to_num(_num(c, spec.field), nan=0.0)
    return np.log1p(np.abs(values)) if spec.transform == "log1p" else values


def _onehot(spec: Categorical, c: Columns) -> np.ndarray:
    rows = _text(c, spec.field)
    codes = _codes(spec, rows)
    out = np.zeros((len(rows), len(spec.vocab) + 1))
    out[np.arange(len(rows)), codes] = 1.0
    return out


_CODES: dict[Categorical, dict[Any, int]] = {}


def _codes(spec: Categorical, rows: np.ndarray) -> np.ndarray:
    """Vocabulary index per row (``len(vocab)`` for the rest). Raw values are memoised per
    vocabulary: a stream batch of a few events would pay more for a factorize than this."""
    memo = _CODES.setdefault(spec, {})
    if len(memo) > 4096:  # a free-text field: keep the memo bounded
        memo.clear()
    codes = np.empty(len(rows), dtype=np.int64)
    for i, value in enumerate(rows.tolist()):
        key = (type(value), value)  # 1 and True are equal keys, their categories are not
        code = memo.get(key)
        if code is None:
            category = _category(value)
            code = memo[key] = spec.vocab.index(category) if category in spec.vocab else len(spec.vocab)
        codes[i] = code
    return codes


def _category(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def model_matrix(spec: ScenarioFeatures, columns: Columns, windows: Mapping[str, np.ndarray],
                 cp_fraud_rate: np.ndarray | None = None) -> np.ndarray:
    """The float32 model input, one row per event, columns in ``spec.columns`` order.

    ``columns`` holds the events' raw fields (see :func:`event_columns`), ``windows``
    their window features (``compute_features`` in batch, ``EntityState.observe`` in
    the stream), ``cp_fraud_rate`` the counterparty's known fraud rate (zeros if None).
    """
    n = len(columns["t_ms"])
    w = {name: np.asarray(values, dtype=np.float64) for name, values in windows.items()}
    generic = _generic(spec, columns, w)
    if tuple(generic) != _generic_names(spec):
        raise AssertionError(f"{spec.scenario}: generic columns out of order")
    blocks = [generic]
    blocks.append({spec_.column: _numeric(spec_, columns) for spec_ in spec.numeric})
    if spec.derive is not None:
        derived = spec.derive(columns, w)
        if list(derived) != list(spec.derived):
            raise AssertionError(f"{spec.scenario}: derived columns {list(derived)} != {list(spec.derived)}")
        blocks.append(derived)
    parts = [np.column_stack([block[name] for name in block]) if block else np.empty((n, 0))
             for block in blocks]
    parts += [_onehot(cat, columns) for cat in spec.categorical]
    if spec.counterparty:
        rate = np.zeros(n) if cp_fraud_rate is None else np.asarray(cp_fraud_rate, dtype=np.float64)
        parts.append(rate.reshape(n, 1))
    matrix = np.concatenate(parts, axis=1).astype(np.float32)
    matrix[~np.isfinite(matrix)] = 0.0  # nan and +-inf: one pass, in place
    if matrix.shape[1] != len(spec.columns):
        raise AssertionError(f"{spec.scenario}: {matrix.shape[1]} columns built, {len(spec.columns)} declared")
    return matrix


def event_columns(spec: ScenarioFeatures, events: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Raw fields of a list of event dicts as columns (the stream's batch path).

    Each event needs ``t_ms`` (epoch milliseconds of ``event_time``), which the worker adds.
    """
    return {name: np.array([event.get(name) for event in events], dtype=object) for name in spec.raw_fields}


def window_matrix(spec: ScenarioFeatures, rows: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Per-event feature dicts (``EntityState.observe`` results) as columns of ``spec.windows``."""
    try:
        return {f.name: np.array([row[f.name] for row in rows], dtype=np.float64) for f in spec.windows}
    except KeyError as missing:
        raise ValueError(f"{spec.scenario}: feature row lacks {missing}; the entity state must observe "
                         f"window_features({spec.scenario!r})") from None


# -- the signature the manifests store ----------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return value


def feature_signature(scenario: str) -> dict[str, Any]:
    """What defines the model input of a scenario: stored in manifests, compared on load."""
    spec = SPECS[scenario]
    windows = [{"kind": type(f).__name__, **_plain(asdict(f))} for f in spec.windows]
    return {
        "feature_version": FEATURE_VERSION,
        "columns": spec.columns,
        "windows": windows,
        "vocabularies": {cat.field: list(cat.vocab) for cat in spec.categorical},
        "counterparty": spec.counterparty,
    }
