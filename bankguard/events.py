"""Versioned event schemas, shared by the producers and the stream agents.

Every event on ``<prefix>.tx.<scenario>`` is one JSON object of the scenario's model,
keyed by ``entity_id``; each model lives in its scenario unit (``bankguard/scenarios``),
built on the base and field types below. The committed JSON Schemas in
``bankguard/schemas/`` are generated from these models (``bankguard schemas export``) and
a test keeps them in sync, so non-Python consumers can validate the same contract.

Common fields: ``amount``, ``currency``, ``memo`` and ``counterparty`` are shared so
the amount and keyword rules read every scenario the same way; a scenario that has
no money (cyber_security) leaves ``amount`` empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta, UTC
from functools import cache
from typing import Annotated, Any, Final, Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SCHEMA_VERSION: Final = 1

Id = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Money = Annotated[float, Field(allow_inf_nan=False)]
PositiveMoney = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class EventBase(BaseModel):
    """Fields every scenario event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Id
    entity_id: Id
    event_time: AwareDatetime = Field(description="When it happened (UTC, ISO 8601).")
    amount: Money | None = None
    currency: Currency | None = None
    memo: Annotated[str, Field(max_length=512)] | None = None
    counterparty: Annotated[str, Field(max_length=128)] | None = None


@cache
def _adapter(scenario: str) -> TypeAdapter[Any]:
    """The validator of a scenario's events, built on first use from the registry (whose
    units define their event models on the base types above)."""
    from bankguard.scenarios import SCENARIOS

    return TypeAdapter(SCENARIOS[scenario].event)


class InvalidEvent(ValueError):
    """An event that is not valid JSON or breaks its scenario's schema."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_event(scenario: str, raw: bytes) -> EventBase:
    """Validate raw bytes against the scenario schema; raise :class:`InvalidEvent` with why.

    ``reason`` is a short, bounded label (``malformed_json`` or ``schema_violation``)
    fit for a metric label; ``detail`` names the offending fields.
    """
    try:
        event = _adapter(scenario).validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] in ("json_invalid", "json_type"):
            raise InvalidEvent("malformed_json", first["msg"]) from None
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5]
        )
        raise InvalidEvent("schema_violation", fields) from None
    if event.scenario != scenario:
        raise InvalidEvent("schema_violation", f"scenario {event.scenario!r} on a {scenario} topic")
    return event


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)  # built once: this runs for every scored event


def epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds of an aware time (``timestamp() * 1000`` can round down by one)."""
    return (moment - _EPOCH) // _MILLISECOND


def iso_times(timestamps_ms: np.ndarray) -> list[str]:
    """Epoch milliseconds to the schemas' ISO 8601 UTC strings, vectorised."""
    text = np.datetime_as_string(np.asarray(timestamps_ms).astype("datetime64[ms]"), unit="ms")
    return [value + "Z" for value in text.tolist()]
