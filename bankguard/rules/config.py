"""The rules configuration: one versioned YAML document, validated before it is used.

Every threshold and keyword list lives here, so risk engineers change behaviour with
a reviewed file (``bankguard rules publish``) rather than a deploy, and every alert
names the config version that produced it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bankguard.errors import BankguardError
from bankguard.scenarios import SCENARIOS

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_rules.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    threshold: float = Field(gt=0)
    severity: Severity


class LargeAmountConfig(_Strict):
    """The large-amount rule, parameters as the business rule states them."""

    enabled: bool = True
    scenarios: tuple[str, ...] = ("aml_kyc", "atm_netbank")
    amount_threshold: float = Field(50_000, gt=0)
    history_days: int = Field(90, ge=1, le=366)
    outlier_multiplier: float = Field(3.0, gt=0)
    tiers: tuple[Tier, ...] = ()
    reasonable_keywords: tuple[str, ...]
    high_risk_keywords: tuple[str, ...]


class KeywordList(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    severity: Severity
    words: tuple[str, ...] = Field(min_length=1)


class KeywordConfig(_Strict):
    enabled: bool = True
    lists: tuple[KeywordList, ...] = ()


class RulesConfig(_Strict):
    version: str = Field(min_length=1, max_length=64)
    large_amount: LargeAmountConfig
    keywords: KeywordConfig = KeywordConfig()
    context: dict[str, dict[str, float | int | bool | str | list[str]]] = Field(default_factory=dict)
    disabled_rules: tuple[str, ...] = ()
    allow_silent_scenarios: tuple[str, ...] = ()  # signed consent to no active rule (bankguard.rules.coverage)

    @field_validator("large_amount")
    @classmethod
    def _known_scenarios(cls, value: LargeAmountConfig) -> LargeAmountConfig:
        unknown = [s for s in value.scenarios if s not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}")
        return value

    @model_validator(mode="after")
    def _tiers_above_threshold(self) -> RulesConfig:
        for tier in self.large_amount.tiers:
            if tier.threshold < self.large_amount.amount_threshold:
                raise ValueError(
                    f"tier {tier.threshold:g} is below amount_threshold "
                    f"{self.large_amount.amount_threshold:g}"
                )
        return self

    def params(self, rule_id: str) -> dict[str, Any]:
        """Parameters of a context rule (empty: the rule's defaults)."""
        return self.context.get(rule_id, {})


def parse_rules(text: str | bytes, *, source: str = "rules") -> RulesConfig:
    """Validate a YAML document; :class:`BankguardError` says what is wrong, in one line."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BankguardError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise BankguardError(f"{source}: expected a mapping with a version")
    try:
        return RulesConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "<root>"
        raise BankguardError(f"{source}: {where}: {first['msg']}") from None


def load_rules(path: Path | None = None) -> RulesConfig:
    path = path or DEFAULT_CONFIG_PATH
    if not path.is_file():
        raise BankguardError(f"rules file not found: {path}")
    return parse_rules(path.read_bytes(), source=str(path))
