"""The CLI's one error boundary: every expected failure becomes one line on stderr and a
non-zero exit, never a traceback.

Expected failures are the user's to fix: a usage mistake (exit 2), a bad setting (2), a
refused input or unusable path (1), a Kafka client that cannot be configured (1), Ctrl-C
(130). Anything else is a defect and keeps its traceback, so it gets reported and fixed.
"""

from __future__ import annotations

import sys
import zoneinfo
from collections.abc import Callable
from typing import NoReturn

import typer
from confluent_kafka import KafkaException
from pydantic import ValidationError
from pydantic_settings import SettingsError
from typer.exceptions import TyperException

from bankguard.errors import BankguardError

USAGE, FAILURE, INTERRUPTED = 2, 1, 130
MAX_MESSAGE = 400


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) as one space, shortened."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code of an expected failure; ``None`` for a defect."""
    if isinstance(exc, TyperException):  # usage errors: unknown option, bad value, missing file
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return f"{exc.format_message()}{hint}", getattr(exc, "exit_code", USAGE)
    if isinstance(exc, BankguardError):
        return str(exc), exc.exit_code
    if isinstance(exc, SettingsError):  # a variable that does not parse, e.g. BANKGUARD_KAFKA='{not json'
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        return f"invalid setting in the environment: {exc}{cause}", USAGE
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid value {where}: {first['msg']}", USAGE
    if isinstance(exc, zoneinfo.ZoneInfoNotFoundError):
        return f"unknown time zone: {exc.args[0] if exc.args else exc}", USAGE
    if isinstance(exc, KafkaException):
        error = exc.args[0] if exc.args else exc
        return f"Kafka client error: {error.str() if hasattr(error, 'str') else error}", FAILURE
    if isinstance(exc, OSError) and exc.filename is not None:  # a path the user named or configured
        return f"{exc.filename}: {exc.strerror or exc}", FAILURE
    return None


def run(app: Callable[..., object]) -> NoReturn:
    """Run a Typer app (not standalone) and exit with its code, or one line and a failure code."""
    try:
        result = app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        known = describe(exc)
        if known is None:
            raise
        message, code = known
        print(f"bankguard: {one_line(message)}", file=sys.stderr)
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)
