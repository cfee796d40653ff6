"""The scenario registry: the nine banking scenarios, one unit (module) each.

A unit declares everything about its scenario: the event model (its JSON Schema is
committed in ``bankguard/schemas``), its context rules with their parameter models, its
model features and LSTM step fields, its topic and the name of its generator. The
producers, the worker, the backtests and the models look scenarios up here; adding one is
adding its unit to the list below (see "Adding a scenario" in the README).
"""

from __future__ import annotations

from bankguard.scenarios import (aml_kyc, atm_netbank, credit_card, cyber_security, enterprise_loan, forex_trading,
                                 insurance_claims, interbank_derivatives, wealth_product)
from bankguard.scenarios.unit import Scenario, registry

SCENARIOS: dict[str, Scenario] = registry((
    enterprise_loan.SCENARIO,
    credit_card.SCENARIO,
    forex_trading.SCENARIO,
    wealth_product.SCENARIO,
    atm_netbank.SCENARIO,
    interbank_derivatives.SCENARIO,
    aml_kyc.SCENARIO,
    insurance_claims.SCENARIO,
    cyber_security.SCENARIO,
))


def parse_scenarios(spec: str) -> list[str]:
    """Turn ``all`` or ``a,b`` into scenario keys; raises ``ValueError`` naming the unknown one."""
    if spec.strip() == "all":
        return list(SCENARIOS)
    keys = [part.strip() for part in spec.split(",") if part.strip()]
    unknown = [key for key in keys if key not in SCENARIOS]
    if unknown or not keys:
        raise ValueError(
            f"unknown scenario {', '.join(unknown) or repr(spec)}; "
            f"choose from: all, {', '.join(SCENARIOS)}"
        )
    return keys


__all__ = ["SCENARIOS", "Scenario", "parse_scenarios"]
