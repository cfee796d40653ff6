"""The catalog of the nine banking scenarios: what each one monitors and keys by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScenarioInfo:
    """Static description of a scenario, shown in the CLI, README and dashboards."""

    key: str
    name: str
    entity: str
    entity_prefix: str
    risk_types: tuple[str, ...]
    controls: tuple[str, ...]


_CATALOG = (
    ScenarioInfo("enterprise_loan", "Corporate loan approval", "company", "CO",
                 ("credit",), ("financial analysis", "collateral")),
    ScenarioInfo("credit_card", "Card issuing and use", "card", "CARD",
                 ("fraud", "credit", "operational"), ("limits", "anti-fraud model")),
    ScenarioInfo("forex_trading", "FX trading", "trader", "TRD",
                 ("market",), ("limits", "hedging")),
    ScenarioInfo("wealth_product", "Wealth product sales", "customer", "WC",
                 ("compliance", "reputation"), ("suitability (KYC)",)),
    ScenarioInfo("atm_netbank", "ATM and online banking", "account", "ACC",
                 ("operational", "network"), ("2FA", "firewall")),
    ScenarioInfo("interbank_derivatives", "Interbank lending and derivatives", "counterparty bank",
                 "BNK", ("market", "liquidity"), ("VaR", "liquidity limits")),
    ScenarioInfo("aml_kyc", "Anti-money-laundering", "customer", "CUS",
                 ("legal", "compliance"), ("transaction monitoring", "watch lists")),
    ScenarioInfo("insurance_claims", "Insurance claims", "policy", "POL",
                 ("fraud", "operational"), ("automated claim review",)),
    ScenarioInfo("cyber_security", "Cyber-security monitoring", "host", "HOST",
                 ("network", "fraud"), ("intrusion detection",)),
)

SCENARIOS: dict[str, ScenarioInfo] = {info.key: info for info in _CATALOG}


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
