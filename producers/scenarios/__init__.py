"""One generator per scenario; :func:`generator_class` finds it by scenario key."""

from __future__ import annotations

from importlib import import_module

from bankguard.producers.scenarios.base import ScenarioGenerator

_CLASS_NAMES = {
    "enterprise_loan": "EnterpriseLoanGenerator",
    "credit_card": "CreditCardGenerator",
    "forex_trading": "ForexTradingGenerator",
    "wealth_product": "WealthProductGenerator",
    "atm_netbank": "AtmNetbankGenerator",
    "interbank_derivatives": "InterbankDerivativesGenerator",
    "aml_kyc": "AmlKycGenerator",
    "insurance_claims": "InsuranceClaimsGenerator",
    "cyber_security": "CyberSecurityGenerator",
}


def generator_class(scenario: str) -> type[ScenarioGenerator]:
    """The generator of a scenario (module ``producers/scenarios/<scenario>.py``)."""
    module = import_module(f"bankguard.producers.scenarios.{scenario}")
    return getattr(module, _CLASS_NAMES[scenario])
