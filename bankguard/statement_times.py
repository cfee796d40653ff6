"""Statement datetimes to UTC, row by row in outcome but vectorised in work.

A column may mix local times (no offset: read in the statement's ``--timezone``) with times
that carry an offset or ``Z``, in ISO 8601 or looser layouts. Each row ends as a UTC time
or as a reason (unparseable, outside the supported years, an ambiguous local time), so one
odd row never refuses the statement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bankguard.time_zones import EARLIEST_MS, LATEST_MS, RANGE_TEXT, check_time_zone

EARLIEST = pd.Timestamp(EARLIEST_MS, unit="ms", tz="UTC")
LATEST = pd.Timestamp(LATEST_MS, unit="ms", tz="UTC")
_WITH_OFFSET = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


@dataclass(frozen=True)
class ParsedTimes:
    """``utc`` per row (NaT where refused) and the refused rows' positions and reasons."""

    utc: pd.Series
    bad: np.ndarray
    reasons: list[str]


def parse_times(text: pd.Series, timezone: str) -> ParsedTimes:
    """UTC times of ``text`` (stripped strings); naive ones are local to ``timezone``."""
    zone = check_time_zone(timezone)
    aware = text.str.contains(_WITH_OFFSET, regex=True).to_numpy(dtype=bool)
    utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if aware.any():
        utc[aware] = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True).astype(utc.dtype)
    naive = ~aware
    ambiguous = np.zeros(len(text), dtype=bool)
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        local = local.astype("datetime64[us]")
        parsed = local.notna().to_numpy()
        localized = local.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
        ambiguous[np.flatnonzero(naive)[parsed & localized.isna().to_numpy()]] = True
        utc[naive] = localized.dt.tz_convert("UTC").astype(utc.dtype)
    values = text.to_numpy(dtype=object)
    reasons: dict[int, str] = {}
    for i in np.flatnonzero(utc.isna().to_numpy() & ~ambiguous).tolist():  # other layouts, one by one
        moment = _one(values[i], zone)
        if isinstance(moment, str):
            reasons[i] = moment
        else:
            utc.iat[i] = moment
    for i in np.flatnonzero(ambiguous).tolist():
        reasons[i] = f"ambiguous local time {values[i][:40]!r} in {timezone} (clock change): add an offset"
    out_of_range = (utc.notna() & ((utc < EARLIEST) | (utc >= LATEST))).to_numpy()
    for i in np.flatnonzero(out_of_range).tolist():
        reasons[i] = f"datetime {values[i][:40]!r} outside {RANGE_TEXT}"
    bad = np.array(sorted(reasons), dtype=np.int64)
    utc = utc.where(~np.isin(np.arange(len(utc)), bad))
    return ParsedTimes(utc.astype("datetime64[ns, UTC]"), bad, [reasons[i] for i in bad.tolist()])


def _one(value: str, zone: object) -> pd.Timestamp | str:
    """One datetime in any layout pandas reads, as UTC, or why it is refused."""
    if not value:
        return "missing datetime"
    try:
        moment = pd.Timestamp(value)
    except (ValueError, OverflowError):
        try:  # a layout only dateutil knows ("Mar 1 2026 10:00"); years outside pandas' range fail here too
            moment = pd.to_datetime(value, format="mixed")
        except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
            return _unparseable_or_far(value)
    if pd.isna(moment):
        return f"unparseable datetime {value[:40]!r}"
    try:
        if moment.tzinfo is None:
            moment = moment.tz_localize(zone, ambiguous="raise", nonexistent="shift_forward")
        return moment.tz_convert("UTC")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return _unparseable_or_far(value)


def _unparseable_or_far(value: str) -> str:
    """A date Python reads but pandas cannot hold (year 1, 9999) is out of range, not garbage."""
    from datetime import datetime

    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"unparseable datetime {value[:40]!r}"
    return f"datetime {value[:40]!r} outside {RANGE_TEXT}"
