"""Model reasons in the words of a risk officer, read back from the model's own input row.

Why from the row: the matrix holds transforms (``log1p`` of counts and seconds, log
ratios of an amount to a mean), and an alert that says ``amt_ratio_30d = 1.65`` makes
the analyst do the arithmetic. Each transform in :mod:`bankguard.models.features` has
an inverse here, so the reason states the quantity itself ("amount 5.2x this card's
30-day mean (312.40)"), the same in the worker and in backtests. A column without a
phrase falls back to its name in words and its value, never to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from bankguard.models.features import NEVER_SECONDS, OTHER

Row = Mapping[str, float]
SPAN_WORDS = {"1h": "hour", "1d": "day", "7d": "7 days", "30d": "30 days"}
SEEN_WORDS = {"device": "device", "ip": "IP address", "payee": "payee", "merchant": "merchant",
              "country": "country", "provider": "provider", "advisor": "advisor", "branch": "branch",
              "collateral": "collateral", "counterparty": "counterparty", "pair": "currency pair",
              "remote": "remote host"}


def duration(seconds: float) -> str:
    """Seconds as people say them: 40 s, 12 min, 5 h, 3 days."""
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:.0f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _count(value: float) -> int:
    return round(math.expm1(value))


def _ratio(value: float) -> str:
    return f"{math.exp(value):.1f}x"


def _amount(row: Row) -> float | None:
    return math.expm1(row["log_amount"]) if "log_amount" in row else None


def _mean_of(row: Row, ratio: float) -> str:
    """The reference a log ratio was taken against: (|amount| + 1) / e^ratio - 1."""
    amount = _amount(row)
    return "" if amount is None else f" ({(amount + 1) / math.exp(ratio) - 1:,.2f})"


def _never(value: float) -> bool:
    """Whether a ``log_since_*`` value is the "never seen" one (beyond the horizon)."""
    return value > math.log1p(NEVER_SECONDS)


def _since(value: float, what: str) -> str:
    if _never(value):
        return f"{what} never seen before"
    return f"{what} last seen {duration(math.expm1(value))} earlier"


def describe(column: str, row: Row, entity: str) -> str:
    """One reason: what ``column`` holds for this event, as a quantity."""
    value = row[column]
    phrase = _PHRASES.get(column)
    if phrase is not None:
        return phrase(value, row, entity)
    if column.startswith("log_cnt_"):
        span = SPAN_WORDS.get(column[8:], column[8:])
        return f"{_count(value)} earlier events of this {entity} in the last {span}"
    if column.startswith("log_since_"):
        name = column[10:].removesuffix("_seen")
        return _since(value, f"this {SEEN_WORDS.get(name, name.replace('_', ' '))}")
    if "=" in column:
        field, category = column.split("=", 1)
        field = field.replace("_", " ")
        return f"{field} outside the usual ones" if category == OTHER else f"{field} {category}"
    if column.startswith("log1p_"):
        return f"{column[6:].replace('_', ' ')} {number(math.expm1(value))}"
    if column.startswith("log_"):
        return f"{column[4:].replace('_', ' ')} {number(math.copysign(math.expm1(abs(value)), value))}"
    return f"{column.replace('_', ' ')} {number(value)}"


def number(value: float) -> str:
    """Large values with separators (279,670), small ones with four significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1_000 else f"{value:.4g}"


_PHRASES: dict[str, Callable[[float, Row, str], str]] = {
    "burst_1h": lambda v, r, e: f"last hour's events {_ratio(v)} this {e}'s usual hourly rate",
    "burst_1d": lambda v, r, e: f"last day's events {_ratio(v)} this {e}'s usual daily rate",
    "log_since_prev": lambda v, r, e: (f"first event of this {e}" if _never(v)
                                       else f"previous event of this {e} {duration(math.expm1(v))} earlier"),
    "first_event": lambda v, r, e: f"first event of this {e}" if v else f"not the first event of this {e}",
    "has_amount": lambda v, r, e: "has an amount" if v else "no amount",
    "log_amount": lambda v, r, e: f"amount {math.expm1(v):,.2f}",
    "amt_ratio_7d": lambda v, r, e: f"amount {_ratio(v)} this {e}'s 7-day mean{_mean_of(r, v)}",
    "amt_ratio_30d": lambda v, r, e: f"amount {_ratio(v)} this {e}'s 30-day mean{_mean_of(r, v)}",
    "amt_vs_max_30d": lambda v, r, e: f"amount {_ratio(v)} this {e}'s largest in 30 days{_mean_of(r, v)}",
    "log_amt_sum_1h": lambda v, r, e: f"{math.expm1(v):,.2f} moved by this {e} in the last hour",
    "spend_1d_vs_30d": lambda v, r, e: f"spend in the last day {_ratio(v)} this {e}'s daily average",
    "cp_fraud_rate": lambda v, r, e: f"counterparty's confirmed fraud rate {v:.1%}",
}
