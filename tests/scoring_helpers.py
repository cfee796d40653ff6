"""Crafting scenario events and reading the worker's alerts back, for scoring tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, UTC

import orjson
from confluent_kafka import Producer

from bankguard.kafka import producer_config
from bankguard.settings import Settings
from bankguard.topics import Topics
from kafka_helpers import read_topic

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
_ids = itertools.count()

BASE = {
    "enterprise_loan": {"amount": 1_000_000.0, "currency": "CNY", "industry_type": "retail", "credit_score": 700,
                        "debt_ratio": 0.5, "annual_revenue": 20_000_000.0, "collateral_value": 0.0,
                        "branch_id": "BR-01"},
    "credit_card": {"amount": 300.0, "currency": "CNY", "transaction_type": "purchase", "device_type": "mobile",
                    "device_id": "D-1", "merchant_category": "5411", "country": "CN", "ip_address": "1.2.3.4",
                    "counterparty": "M-000001"},
    "forex_trading": {"amount": 1_000_000.0, "currency": "USD", "currency_pair": "USD/JPY", "side": "buy",
                      "price": 150.0, "volatility": 0.5, "desk": "DESK-1", "counterparty": "BNK-1"},
    "wealth_product": {"amount": 100_000.0, "currency": "CNY", "product_type": "fund", "product_risk_level": 3,
                       "investor_age": 40, "risk_tolerance": "balanced", "channel": "advisor",
                       "counterparty": "ADV-0001"},
    "atm_netbank": {"access_method": "MobileApp", "device_type": "mobile", "device_id": "D-1",
                    "ip_address": "1.2.3.4", "country": "CN", "action": "login", "login_attempts": 1,
                    "success": True},
    "interbank_derivatives": {"amount": 10_000_000.0, "currency": "CNY", "derivative_type": "swap",
                              "interest_rate": 2.1, "tenor_days": 90, "direction": "pay", "desk": "DESK-1"},
    "aml_kyc": {"amount": 1_000.0, "currency": "CNY", "direction": "out", "channel": "wire",
                "source_country": "CN", "destination_country": "CN", "pep": False},
    "insurance_claims": {"amount": 5_000.0, "currency": "CNY", "claim_type": "auto", "policy_start": "2024-01-01",
                         "prior_claims": 0, "counterparty": "PRV-00001"},
    "cyber_security": {"threat_type": "malware", "systems_affected": 1, "severity_score": 5.0, "bytes_out": 1000,
                       "detector": "edr"},
}


def event(scenario: str, entity: str, at: timedelta, **fields: object) -> dict:
    """A valid event of ``scenario`` for ``entity`` at ``T0 + at``, with fields overridden."""
    when = T0 + at
    return {"schema_version": 1, "event_id": f"{scenario[:3]}-{next(_ids)}", "scenario": scenario,
            "entity_id": entity, "event_time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **BASE[scenario], **fields}


def send(settings: Settings, events: list[dict]) -> None:
    producer = Producer(producer_config(settings))
    topics = Topics(settings.topics.prefix)
    for e in events:
        when = datetime.fromisoformat(e["event_time"].replace("Z", "+00:00"))
        producer.produce(topics.scenario(e["scenario"]), orjson.dumps(e), e["entity_id"].encode(),
                         timestamp=int(when.timestamp() * 1000))
    assert producer.flush(15) == 0


def alerts_after(settings: Settings, worker, events: list[dict]) -> list[dict]:
    """Every alert the worker wrote once it has scored all of ``events``."""
    wanted: dict[str, int] = {}
    for e in events:
        wanted[e["scenario"]] = wanted.get(e["scenario"], 0) + 1
    worker.wait_for("bankguard_events", lambda t: all(t.get(k, 0) >= n for k, n in wanted.items()))
    return [orjson.loads(r.value) for r in read_topic(settings, Topics(settings.topics.prefix).alerts, idle_s=1.5)]


def summary(alerts: list[dict]) -> set[tuple[str, str, str]]:
    return {(a["entity_id"], a["detector"]["id"], a["severity"]) for a in alerts}
