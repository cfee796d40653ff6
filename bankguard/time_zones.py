"""Time zone names from users (``--timezone``), checked once with a clear message."""

from __future__ import annotations

import zoneinfo

from bankguard.errors import UsageMistake


def check_time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone of an IANA name such as ``Asia/Shanghai`` or ``UTC``, or one :class:`UsageMistake`."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UsageMistake(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai or UTC)") from None
