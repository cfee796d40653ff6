"""Checks of option values that Typer's types let through: infinities and NaN, unknown time
zones and encodings, malformed currencies, output paths that cannot be written.

Each is a Typer ``callback``: a bad value is a usage error naming the option (exit 2),
raised before any work starts or any file is touched.
"""

from __future__ import annotations

import codecs
import math
import re
import socket
from datetime import date
from pathlib import Path

import typer

from bankguard.errors import BankguardError, UsageMistake
from bankguard.output_files import check_output_file
from bankguard.time_zones import check_time_zone

CURRENCY = re.compile(r"[A-Z]{3}")
AUTO_ENCODING = "auto"


def finite(value: float | None) -> float | None:
    """A float option that must be a finite number (``inf`` and ``nan`` parse as floats)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def day(value: str | None) -> str | None:
    """A calendar day, ISO 8601 (``2026-11-20``), read as that UTC day."""
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


def time_zone(value: str | None) -> str | None:
    """An IANA time zone name such as ``Asia/Shanghai`` or ``UTC``."""
    if value is not None:
        try:
            check_time_zone(value)
        except UsageMistake as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def currency(value: str) -> str:
    """An ISO 4217 code: three capital letters, as the event schema requires."""
    if not CURRENCY.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not an ISO 4217 currency code (three capital letters, e.g. CNY)")
    return value


def encoding(value: str) -> str:
    """``auto`` or a codec Python knows (``utf-8``, ``gb18030``, ``gbk``, ``big5`` ...)."""
    if value.lower() != AUTO_ENCODING:
        try:
            codecs.lookup(value)
        except LookupError:
            raise typer.BadParameter(f"unknown encoding {value!r}") from None
    return value


def output_dir(value: Path | None) -> Path | None:
    """A directory to write into: it may be created, but only inside one that exists."""
    if value is not None:
        parent = value.parent if str(value.parent) else Path(".")
        if value.exists() and not value.is_dir():
            raise typer.BadParameter(f"{value} is a file, not a directory")
        if not value.exists() and not parent.is_dir():
            raise typer.BadParameter(f"cannot create {value}: directory {parent} does not exist")
    return value


def listen_host(value: str | None) -> str | None:
    """An address or host name this machine can resolve (else the bind fails as a 'busy port')."""
    if value is not None:
        try:
            socket.getaddrinfo(value, None)
        except (socket.gaierror, UnicodeError):
            raise typer.BadParameter(f"{value!r} is not an address or a host name that resolves") from None
    return value


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level(value: str) -> str:
    """A logging level name (any case)."""
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return value.lower()


def output_file(value: Path | None) -> Path | None:
    """A file to write: its directory must exist and be writable (none is created)."""
    if value is not None:
        try:
            check_output_file(value)
        except BankguardError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value
