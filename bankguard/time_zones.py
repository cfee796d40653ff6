"""Times from users: time zone names (``--timezone``) and the years bankguard accepts,
checked once with a clear message."""

from __future__ import annotations

import zoneinfo

from bankguard.errors import UsageMistake

EARLIEST_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z
LATEST_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z, exclusive
RANGE_TEXT = "1900-01-01 to 2199-12-31"


def check_time_range(epoch_ms: int, what: str) -> int:
    """``epoch_ms`` when within :data:`RANGE_TEXT`, else one :class:`UsageMistake`."""
    if not EARLIEST_MS <= epoch_ms < LATEST_MS:
        raise UsageMistake(f"{what} is outside {RANGE_TEXT}")
    return epoch_ms


def check_time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone of an IANA name such as ``Asia/Shanghai`` or ``UTC``, or one :class:`UsageMistake`."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UsageMistake(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai or UTC)") from None
