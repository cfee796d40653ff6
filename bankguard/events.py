"""Versioned event schemas, shared by the producers and the stream agents.

Every event on ``<prefix>.tx.<scenario>`` is one JSON object of the scenario's model
below, keyed by ``entity_id``. The committed JSON Schemas in ``bankguard/schemas/``
are generated from these models (``bankguard schemas export``) and a test keeps
them in sync, so non-Python consumers can validate the same contract.

Common fields: ``amount``, ``currency``, ``memo`` and ``counterparty`` are shared so
the amount and keyword rules read every scenario the same way; a scenario that has
no money (cyber_security) leaves ``amount`` empty.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, UTC
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


class EnterpriseLoanEvent(EventBase):
    """A corporate loan application (entity: company)."""

    scenario: Literal["enterprise_loan"] = "enterprise_loan"
    amount: PositiveMoney
    currency: Currency
    industry_type: Literal["tech", "finance", "retail", "manufacturing"]
    credit_score: Annotated[int, Field(ge=300, le=850)]
    debt_ratio: Annotated[float, Field(ge=0, le=10)]
    annual_revenue: PositiveMoney
    collateral_value: Annotated[float, Field(ge=0)]
    branch_id: Id


class CreditCardEvent(EventBase):
    """A card authorisation (entity: card); counterparty is the merchant."""

    scenario: Literal["credit_card"] = "credit_card"
    amount: PositiveMoney
    currency: Currency
    transaction_type: Literal["purchase", "cash_advance", "balance_transfer"]
    device_type: Literal["mobile", "desktop", "tablet"]
    device_id: Id
    merchant_category: Annotated[str, Field(pattern=r"^\d{4}$")]
    country: Country
    ip_address: str


class ForexTradingEvent(EventBase):
    """An FX trade (entity: trader); amount is the notional in the base currency."""

    scenario: Literal["forex_trading"] = "forex_trading"
    amount: PositiveMoney
    currency: Currency
    currency_pair: Literal["USD/EUR", "USD/JPY", "GBP/USD"]
    side: Literal["buy", "sell"]
    price: PositiveMoney
    volatility: Annotated[float, Field(ge=0, le=5)]
    desk: Id


class WealthProductEvent(EventBase):
    """A wealth product sale (entity: customer); counterparty is the advisor."""

    scenario: Literal["wealth_product"] = "wealth_product"
    amount: PositiveMoney
    currency: Currency
    product_type: Literal["stock", "bond", "fund", "crypto"]
    product_risk_level: Annotated[int, Field(ge=1, le=5)]
    investor_age: Annotated[int, Field(ge=18, le=110)]
    risk_tolerance: Literal["conservative", "balanced", "aggressive"]
    channel: Literal["branch", "online", "advisor"]


class AtmNetbankEvent(EventBase):
    """A login, withdrawal or transfer (entity: account); counterparty is the beneficiary."""

    scenario: Literal["atm_netbank"] = "atm_netbank"
    access_method: Literal["ATM", "Netbank", "MobileApp"]
    device_type: Literal["atm", "mobile", "desktop", "tablet"]
    device_id: Id
    ip_address: str
    country: Country
    action: Literal["login", "withdrawal", "transfer", "balance_inquiry"]
    login_attempts: Annotated[int, Field(ge=1, le=100)]
    success: bool


class InterbankDerivativesEvent(EventBase):
    """An interbank loan or derivative deal (entity: counterparty bank)."""

    scenario: Literal["interbank_derivatives"] = "interbank_derivatives"
    amount: PositiveMoney
    currency: Currency
    derivative_type: Literal["swap", "option", "future", "loan"]
    interest_rate: Annotated[float, Field(ge=-5, le=50)]
    tenor_days: Annotated[int, Field(ge=1, le=18_250)]
    direction: Literal["pay", "receive"]
    desk: Id


class AmlKycEvent(EventBase):
    """A payment seen by transaction monitoring (entity: customer)."""

    scenario: Literal["aml_kyc"] = "aml_kyc"
    amount: Money
    currency: Currency
    direction: Literal["in", "out"]
    channel: Literal["wire", "cash", "card", "internal", "statement"]
    source_country: Country
    destination_country: Country
    pep: bool


class InsuranceClaimsEvent(EventBase):
    """An insurance claim (entity: policy); counterparty is the provider or repair shop."""

    scenario: Literal["insurance_claims"] = "insurance_claims"
    amount: PositiveMoney
    currency: Currency
    claim_type: Literal["health", "auto", "property", "life"]
    policy_start: date
    prior_claims: Annotated[int, Field(ge=0, le=100)]


class CyberSecurityEvent(EventBase):
    """A security detection (entity: host); counterparty is the remote address."""

    scenario: Literal["cyber_security"] = "cyber_security"
    threat_type: Literal["phishing", "malware", "ddos", "insider"]
    systems_affected: Annotated[int, Field(ge=1, le=10_000)]
    severity_score: Annotated[float, Field(ge=0, le=10)]
    bytes_out: Annotated[int, Field(ge=0)]
    detector: Literal["ids", "edr", "email_gateway", "dlp", "waf"]


EVENT_MODELS: dict[str, type[EventBase]] = {
    model.model_fields["scenario"].default: model
    for model in (
        EnterpriseLoanEvent,
        CreditCardEvent,
        ForexTradingEvent,
        WealthProductEvent,
        AtmNetbankEvent,
        InterbankDerivativesEvent,
        AmlKycEvent,
        InsuranceClaimsEvent,
        CyberSecurityEvent,
    )
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {key: TypeAdapter(model) for key, model in EVENT_MODELS.items()}


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
        event = _ADAPTERS[scenario].validate_json(raw)
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


def json_schema(scenario: str) -> dict:
    """The JSON Schema document committed for a scenario."""
    schema = EVENT_MODELS[scenario].model_json_schema()
    schema["$id"] = f"https://bankguard.dev/schemas/events/{scenario}.v{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)  # built once: this runs for every scored event


def epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds of an aware time (``timestamp() * 1000`` can round down by one)."""
    return (moment - _EPOCH) // _MILLISECOND


def iso_times(timestamps_ms: np.ndarray) -> list[str]:
    """Epoch milliseconds to the schemas' ISO 8601 UTC strings, vectorised."""
    text = np.datetime_as_string(np.asarray(timestamps_ms).astype("datetime64[ms]"), unit="ms")
    return [value + "Z" for value in text.tolist()]
