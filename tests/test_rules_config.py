"""The rules configuration refuses what a worker could not run as written, before any worker
sees it: unknown rules, misspelt or unknown parameters, values outside the ranges the rule
logic needs. Each error is one line that names the exact path in the document."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bankguard.errors import BankguardError
from bankguard.rules.config import DEFAULT_CONFIG_PATH, parse_rules
from bankguard.scenarios.aml_kyc import PepCorridorParams, StructuringParams
from bankguard.scenarios.enterprise_loan import LoanStackingParams


def document(**changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    doc.update(changes)
    return doc


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(BankguardError) as caught:
        parse_rules(yaml.safe_dump(doc, allow_unicode=True), source="rules.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


CASES = [
    ({"context": {"enterprise_loan.loan_stacking": {"min_applicatons": 4}}},
     ("rules.yaml: context.enterprise_loan.loan_stacking.min_applicatons: unknown parameter "
     "(did you mean min_applications?)")),
    ({"context": {"enterprise_loan.loan_stackin": {}}},
     "rules.yaml: context.enterprise_loan.loan_stackin: unknown rule (did you mean enterprise_loan.loan_stacking?)"),
    ({"context": {"large_amount": {"amount_threshold": 1}}},
     "rules.yaml: context.large_amount: unknown rule"),
    ({"context": {"credit_card.card_testing": {"spike_multiple": 0.5}}},
     "rules.yaml: context.credit_card.card_testing.spike_multiple: Input should be greater than 1"),
    ({"context": {"aml_kyc.structuring": {"band": 1.5}}},
     "rules.yaml: context.aml_kyc.structuring.band: Input should be less than 1"),
    ({"context": {"aml_kyc.pep_high_risk_corridor": {"countries": ["Iran"]}}},
     "rules.yaml: context.aml_kyc.pep_high_risk_corridor.countries.0: String should match pattern '^[A-Z]{2}$'"),
    ({"context": {"cyber_security.kill_chain": {"window": 2}}},
     "rules.yaml: context.cyber_security.kill_chain.window: unknown parameter"),
    ({"disabled_rules": ["keywords", "no_such_rule"]},
     "rules.yaml: disabled_rules.1: unknown rule no_such_rule"),
    ({"disabled_rules": ["aml_kyc.structurin"]},
     "rules.yaml: disabled_rules.0: unknown rule aml_kyc.structurin (did you mean aml_kyc.structuring?)"),
]


@pytest.mark.parametrize(("changes", "expected"), CASES)
def test_invalid_configurations_are_refused_with_the_exact_path(changes, expected):
    assert error_of(document(**changes)) == expected


def test_a_misspelt_name_in_a_partial_section_is_named_not_the_fields_it_hides():
    doc = document(large_amount={"amount_treshold": 80_000})  # and no keyword lists either
    assert error_of(doc) == ("rules.yaml: large_amount.amount_treshold: unknown parameter "
                             "(did you mean amount_threshold?)")


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("outlier_multiplier", 0.5, "large_amount.outlier_multiplier: Input should be greater than 1"),
    ("history_days", 400, "large_amount.history_days: Input should be less than or equal to 366"),
    ("scenarios", ["aml_kyc", "bogus"], "large_amount.scenarios.1: unknown scenario bogus; choose from"),
])
def test_large_amount_values_out_of_range_are_refused(field, value, expected):
    doc = document()
    doc["large_amount"][field] = value
    assert error_of(doc).startswith(f"rules.yaml: {expected}")


def test_configured_parameters_reach_the_rule_typed_and_unset_ones_keep_their_defaults():
    doc = document(context={"enterprise_loan.loan_stacking": {"min_applications": 5},
                            "aml_kyc.pep_high_risk_corridor": {"countries": ["KP"]}})
    config = parse_rules(yaml.safe_dump(doc, allow_unicode=True))
    assert config.params("enterprise_loan.loan_stacking") == LoanStackingParams(min_applications=5)
    assert config.params("aml_kyc.pep_high_risk_corridor") == PepCorridorParams(countries=("KP",))
    assert config.params("aml_kyc.structuring") is None  # the rule's defaults apply
    assert config.context == doc["context"]  # kept as written, for the audit's diff
    assert StructuringParams().reporting_threshold == 50_000
