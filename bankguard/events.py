"""Versioned event schemas, shared by the producers and the stream agents.

Every event on ``<prefix>.tx.<scenario>`` is one JSON object of the scenario's model,
keyed by ``entity_id``; each model lives in its scenario unit (``bankguard/scenarios``),
built on the base and field types below. The committed JSON Schemas in
``bankguard/schemas/`` are generated from these models (``bankguard schemas export``) and
a test keeps them in sync, so non-Python consumers can validate the same contract.

Common fields: ``amount``, ``currency``, ``memo`` and ``counterparty`` are shared so
the amount and keyword rules read every scenario the same way; a scenario that has
no money (cyber_security) leaves ``amount`` empty.

Parsing is total and strict (:func:`decode_event`): one ``orjson`` decode that the scoring
reads, then bounds that hold for every scenario (record size, text length, number
magnitude, dates, duplicate keys, the topic's scenario), then the scenario's model with
JSON's own types (no ``"12"`` for a number). Anything refused raises
:class:`InvalidEvent` with a bounded reason code.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, UTC
from functools import cache
from typing import Annotated, Any, Final, Literal, NamedTuple, get_args

import numpy as np
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION: Final = 1

EVENT_MAX_BYTES: Final = 32 * 1024  # a scenario event is well under 1 KiB
TEXT_MAX_CHARS: Final = 1_024  # no text field of any scenario is longer
NUMBER_BOUND: Final = 1e15  # |number| below this: amounts in any currency, counts, bytes
EARLIEST: Final = date(1970, 1, 1)  # dates and times within [EARLIEST, LATEST)
LATEST: Final = date(2100, 1, 1)

Id = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Money = Annotated[float, Field(gt=-NUMBER_BOUND, lt=NUMBER_BOUND, allow_inf_nan=False)]
PositiveMoney = Annotated[float, Field(gt=0, lt=NUMBER_BOUND, allow_inf_nan=False)]
NonNegativeMoney = Annotated[float, Field(ge=0, lt=NUMBER_BOUND, allow_inf_nan=False)]  # 0: a card check
# JSON has no date type: dates are ISO 8601 text, the one place a string stands for another type.
EventTime = Annotated[AwareDatetime, Field(strict=False, description="When it happened (UTC, ISO 8601).")]
Day = Annotated[date, Field(strict=False, description="A calendar date (ISO 8601).")]


class EventBase(BaseModel):
    """Fields every scenario event carries.

    Strict: a value must have the JSON type its field means (the scoring reads the decoded
    values, so ``"12"`` for a number would reach the rules as text); text is bounded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=TEXT_MAX_CHARS)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Id
    entity_id: Id
    event_time: EventTime
    amount: Money | None = None
    currency: Currency | None = None
    memo: Annotated[str, Field(max_length=512)] | None = None
    counterparty: Annotated[str, Field(max_length=128)] | None = None


@cache
def event_model(scenario: str) -> type[EventBase]:
    """The model of a scenario's events, from the registry (whose units define them on the
    base types above); looked up on first use, since the units import this module."""
    from bankguard.scenarios import SCENARIOS

    return SCENARIOS[scenario].event


class InvalidEvent(ValueError):
    """An event refused by :func:`decode_event`; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


REASONS: Final = ("malformed_json", "bad_encoding", "non_finite", "duplicate_key", "oversized",
                  "out_of_range", "wrong_scenario", "schema_violation")


class ParsedEvent(NamedTuple):
    """An accepted event: its decoded fields (what the scoring reads) and its validated model."""

    fields: dict[str, Any]
    model: EventBase


def decode_event(scenario: str, raw: bytes) -> ParsedEvent:
    """Decode and validate one event of a ``scenario`` topic, or raise :class:`InvalidEvent`.

    The one parse of an event: ``orjson`` decodes it once and the scoring uses that dict.
    ``reason`` is a short, bounded label fit for a metric; ``detail`` says what was wrong.
    """
    if len(raw) > EVENT_MAX_BYTES:
        raise InvalidEvent("oversized", f"{len(raw):,} bytes, over the {EVENT_MAX_BYTES:,} a record may have")
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _decode_error(raw, exc) from None
    if type(fields) is not dict:
        raise InvalidEvent("schema_violation", f"an event is a JSON object, not {type(fields).__name__}")
    texts = _check_bounds(fields)
    # Each key and each text value take two quotes at least, so more keys than the dict holds
    # (a repeated one) needs more quotes than this; only then is the exact check paid for.
    if raw.count(b'"') // 2 - texts > len(fields) and _has_duplicate_keys(raw):
        raise InvalidEvent("duplicate_key", "a key appears twice (which one counts is up to the reader)")
    declared = fields.get("scenario", scenario)
    if declared != scenario:
        raise InvalidEvent("wrong_scenario", f"scenario {str(declared)[:64]!r} on a {scenario} topic")
    model = event_model(scenario)
    try:
        event = model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidEvent("schema_violation", "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5])) from None
    for name in _date_fields(model):
        value = getattr(event, name)
        day = value.date() if isinstance(value, datetime) else value
        if day is not None and not EARLIEST <= day < LATEST:
            raise InvalidEvent("out_of_range", f"{name}: {value.isoformat()} is outside "
                                               f"{EARLIEST.year}-{LATEST.year - 1}")
    return ParsedEvent(fields, event)


def parse_event(scenario: str, raw: bytes) -> EventBase:
    """The validated model of one event (:func:`decode_event` without the decoded fields)."""
    return decode_event(scenario, raw).model


def _decode_error(raw: bytes, exc: orjson.JSONDecodeError) -> InvalidEvent:
    """Why ``orjson`` refused a document, as a reason code."""
    message = str(exc)
    if "UTF-8" in message:
        return InvalidEvent("bad_encoding", "not valid UTF-8")
    if "infinity when parsed as double" in message:
        return InvalidEvent("out_of_range", f"a number beyond any double ({message})")
    if any(literal in raw for literal in (b"NaN", b"Infinity")):
        return InvalidEvent("non_finite", f"NaN and Infinity are not JSON ({message})")
    return InvalidEvent("malformed_json", message)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidEvent("duplicate_key", "")
    return dict(pairs)


def _has_duplicate_keys(raw: bytes) -> bool:
    """The exact check, run only when the cheap count leaves room for a repeated key
    (``orjson`` keeps the last of two equal keys without a word)."""
    try:
        json.loads(raw, object_pairs_hook=_reject_duplicates)
    except InvalidEvent:
        return True
    except RecursionError:  # nesting this deep is refused by the schema anyway
        return False
    return False


def _check_bounds(fields: dict[str, Any]) -> int:
    """Bounds every scenario shares, before the model: text length and number magnitude.
    Returns how many values are text."""
    texts = 0
    for name, value in fields.items():
        kind = type(value)
        if kind is str:
            texts += 1
            if len(value) > TEXT_MAX_CHARS:
                raise InvalidEvent("oversized", f"{name[:64]}: {len(value):,} characters, over {TEXT_MAX_CHARS:,}")
        elif (kind is float or kind is int) and not -NUMBER_BOUND < value < NUMBER_BOUND:
            raise InvalidEvent("out_of_range", f"{name[:64]}: {value:.3g} is beyond ±{NUMBER_BOUND:g}")
    return texts


@cache
def _date_fields(model: type[EventBase]) -> tuple[str, ...]:
    """The model's date and time fields, whose range :func:`decode_event` checks."""
    def dated(annotation: Any) -> bool:
        if annotation is AwareDatetime:
            return True
        if isinstance(annotation, type):
            return issubclass(annotation, date)
        return any(dated(arg) for arg in get_args(annotation))  # an optional date

    return tuple(name for name, info in model.model_fields.items() if dated(info.annotation))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)  # built once: this runs for every scored event


def epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds of an aware time (``timestamp() * 1000`` can round down by one)."""
    return (moment - _EPOCH) // _MILLISECOND


def ms_time(epoch_ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC time, exactly (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def event_time_ms(value: Any) -> int:
    """Epoch ms of an ISO 8601 time with an offset (or an aware datetime); ``ValueError`` otherwise."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"event_time {value!r} has no offset")
    return epoch_ms(moment)


def iso_times(timestamps_ms: np.ndarray) -> list[str]:
    """Epoch milliseconds to the schemas' ISO 8601 UTC strings, vectorised."""
    text = np.datetime_as_string(np.asarray(timestamps_ms).astype("datetime64[ms]"), unit="ms")
    return [value + "Z" for value in text.tolist()]
