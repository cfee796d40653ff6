"""The rules configuration: one versioned YAML document, validated before it is used.

Every threshold and keyword list lives here, so risk engineers change behaviour with
a reviewed file (``bankguard rules publish``) rather than a deploy, and every alert
names the config version that produced it.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)
from pydantic_core import ErrorDetails

from bankguard.errors import BankguardError

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
# The score of a hit, by its severity: the same for every rule, so scores compare across rules.
SCORES: dict[Severity, float] = {"low": 0.3, "medium": 0.6, "high": 0.85, "critical": 0.95}

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_rules.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleParams(_Strict):
    """Base of a context rule's parameter model: a misspelt or unknown name is an error, not
    a silently ignored key, and the values are checked against the ranges the logic needs."""


class Tier(_Strict):
    threshold: float = Field(gt=0)
    severity: Severity


class LargeAmountConfig(_Strict):
    """The large-amount rule, parameters as the business rule states them."""

    enabled: bool = True
    scenarios: tuple[str, ...] = ("aml_kyc", "atm_netbank")
    amount_threshold: float = Field(50_000, gt=0)
    history_days: int = Field(90, ge=1, le=366)
    outlier_multiplier: float = Field(3.0, gt=1)  # at most 1 would call the mean itself an outlier
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


class CaseWeights(_Strict):
    """How much one hit of a detector says about its entity, in [0, 1]: a typology's weights,
    combining the detectors of a case into its risk (``bankguard.cases``)."""

    default: float = Field(1.0, ge=0, le=1)  # a detector not listed
    detectors: dict[str, float] = Field(default_factory=dict)  # detector id (a rule id, model:<name>) -> weight

    @field_validator("detectors")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for detector, weight in value.items():
            if not 0 <= weight <= 1:
                raise _error((detector,), f"weight {weight} is outside [0, 1]")
        return value

    def of(self, detector: str) -> float:
        return self.detectors.get(detector, self.default)


class RulesConfig(_Strict):
    version: str = Field(min_length=1, max_length=64)
    large_amount: LargeAmountConfig
    keywords: KeywordConfig = KeywordConfig()
    # As written (the audit diffs it); checked against each rule's parameter model.
    context: dict[str, dict[str, Any]] = Field(default_factory=dict)
    disabled_rules: tuple[str, ...] = ()
    allow_silent_scenarios: tuple[str, ...] = ()  # signed consent to no active rule (bankguard.rules.coverage)
    cases: CaseWeights = CaseWeights()
    _params: dict[str, RuleParams] = PrivateAttr(default_factory=dict)

    @field_validator("large_amount")
    @classmethod
    def _known_scenarios(cls, value: LargeAmountConfig) -> LargeAmountConfig:
        from bankguard.scenarios import SCENARIOS  # the scenario units import the rules

        for index, scenario in enumerate(value.scenarios):
            if scenario not in SCENARIOS:
                raise _error(("scenarios", index), f"unknown scenario {scenario}; choose from {', '.join(SCENARIOS)}")
        return value

    @field_validator("context")
    @classmethod
    def _typed_parameters(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        _context_model(_parameter_models()).model_validate(value)  # raises with the path of each error
        return value

    @field_validator("disabled_rules")
    @classmethod
    def _known_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from bankguard.rules.base import RULES  # registered once the rule modules are imported

        for index, rule_id in enumerate(value):
            if rule_id not in RULES:
                raise _error((index,), f"unknown rule {rule_id}{_did_you_mean(rule_id, RULES)}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        models = _parameter_models()
        self._params = {rule_id: models[rule_id].model_validate(params) for rule_id, params in self.context.items()}

    @model_validator(mode="after")
    def _tiers_above_threshold(self) -> RulesConfig:
        for tier in self.large_amount.tiers:
            if tier.threshold < self.large_amount.amount_threshold:
                raise ValueError(
                    f"tier {tier.threshold:g} is below amount_threshold "
                    f"{self.large_amount.amount_threshold:g}"
                )
        return self

    def params(self, rule_id: str) -> RuleParams | None:
        """The typed parameters configured for a context rule (None: the rule's defaults)."""
        return self._params.get(rule_id)


def _parameter_models() -> dict[str, type[RuleParams]]:
    """Each registered context rule's parameter model, by rule id."""
    from bankguard.rules.base import RULES  # registered once the rule modules are imported

    models = {rule_id: getattr(rule, "parameters", None) for rule_id, rule in RULES.items()}
    return {rule_id: model for rule_id, model in models.items()
            if isinstance(model, type) and issubclass(model, RuleParams)}


def _context_model(models: dict[str, type[RuleParams]]) -> type[BaseModel]:
    """The ``context`` section as a model: one optional field per rule id, nothing else."""
    return _context_model_of(tuple(models.items()))


@cache
def _context_model_of(models: tuple[tuple[str, type[RuleParams]], ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {f"rule_{index}": (model | None, Field(None, alias=rule_id))
                              for index, (rule_id, model) in enumerate(models)}
    return create_model("ContextParameters", __config__=ConfigDict(extra="forbid"), **fields)


def _error(loc: tuple[str | int, ...], message: str) -> ValidationError:
    """A validation error at ``loc`` below the field being validated."""
    return ValidationError.from_exception_data("RulesConfig", [
        {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": ValueError(message)}}])


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _first_error(errors: list[ErrorDetails]) -> str:
    """The error to report, as ``path: message``. A misspelt name shows both as an unknown
    key and as its missing original: the unknown key is the one to name, with the guess."""
    def path(error: ErrorDetails) -> str:
        return ".".join(str(part) for part in error["loc"]) or "<root>"

    extra = [error for error in errors if error["type"] == "extra_forbidden"]
    if not extra:
        first = errors[0]
        message = first["msg"].removeprefix("Value error, ")
        return f"{path(first)}: {message}"
    first = extra[0]
    parent, name = first["loc"][:-1], str(first["loc"][-1])
    if parent == ("context",):
        return f"{path(first)}: unknown rule{_did_you_mean(name, _parameter_models())}"
    return f"{path(first)}: unknown parameter{_did_you_mean(name, _fields_at(parent))}"


def _fields_at(parent: tuple[str | int, ...]) -> list[str]:
    """The names a model accepts at ``parent`` (a path into the document), for a guess."""
    model: Any = RulesConfig
    if parent[:1] == ("context",) and len(parent) == 2:
        model = _parameter_models().get(str(parent[1]))
        parent = ()
    for part in parent:
        if isinstance(part, int):
            continue  # an item of a tuple of models: the same model
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = next((arg for arg in (field.annotation, *getattr(field.annotation, "__args__", ()))
                      if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


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
        raise BankguardError(f"{source}: {_first_error(exc.errors(include_url=False))}") from None


def load_rules(path: Path | None = None) -> RulesConfig:
    path = path or DEFAULT_CONFIG_PATH
    if not path.is_file():
        raise BankguardError(f"rules file not found: {path}")
    return parse_rules(path.read_bytes(), source=str(path))
