"""Crafting scenario events and scoring them three ways, for rule tests: in process on the
stream scorer, in process on the backtest's batch engine, and through a real worker."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
from confluent_kafka import Producer

from bankguard.backtest.engine import detect
from bankguard.cases import case_headers, cases_of
from bankguard.backtest.sources import frames_of
from bankguard.event_files import json_event_schema
from bankguard.kafka import producer_config
from bankguard.rules.config import RulesConfig, load_rules
from bankguard.settings import Settings
from bankguard.stream_agents.scoring import Incoming, StreamScorer
from bankguard.stream_agents.state import StateStore
from bankguard.topic_range import TimeRange
from bankguard.topics import Topics
from kafka_helpers import read_topic, scenario_ends, wait_committed

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

Alerts = list[dict[str, Any]]
Scoring = Callable[[list[dict]], Alerts]


def event(scenario: str, entity: str, at: timedelta, **fields: object) -> dict:
    """A valid event of ``scenario`` for ``entity`` at ``T0 + at``, with fields overridden."""
    when = T0 + at
    return {"schema_version": 1, "event_id": f"{scenario[:3]}-{next(_ids)}", "scenario": scenario,
            "entity_id": entity, "event_time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **BASE[scenario], **fields}


def _time_ms(e: dict) -> int:
    return int(datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")).timestamp() * 1000)


def send(settings: Settings, events: list[dict]) -> None:
    """Produce ``events`` to their scenario topics, keyed by entity, and wait for the acknowledgements."""
    producer = Producer(producer_config(settings))
    topics = Topics(settings.topics.prefix)
    for e in events:
        producer.produce(topics.scenario(e["scenario"]), orjson.dumps(e), e["entity_id"].encode(),
                         timestamp=_time_ms(e))
    assert producer.flush(15) == 0


def stream_alerts(events: list[dict], config: RulesConfig | None = None, *, batch_size: int | None = None) -> Alerts:
    """The alerts the worker's scorer raises on ``events``, in process: one partition, in list
    order (the order a worker consumes one entity's events), in batches of ``batch_size``
    (all in one by default)."""
    rules = config or load_rules()
    scorer = StreamScorer(StateStore({}), lambda: rules)
    messages = [Incoming(e["scenario"], "t", 0, offset, e["entity_id"].encode(), orjson.dumps(e), _time_ms(e))
                for offset, e in enumerate(events)]
    size = batch_size or len(messages) or 1
    alerts: Alerts = []
    for start in range(0, len(messages), size):
        scored = scorer.score(messages[start:start + size])
        assert not scored.dead_letters, scored.dead_letters
        alerts += [orjson.loads(alert.value) for alert in scored.alerts]
    return alerts


def batch_alerts(events: list[dict], config: RulesConfig | None = None) -> Alerts:
    """The alerts the backtest's batch engine raises on ``events`` (a window over all of them),
    with the detector named as in a stream alert."""
    frames = frames_of(pa.Table.from_pylist(events, schema=json_event_schema()), None,
                       sorted({e["scenario"] for e in events}))
    span = frames.time_span()
    assert span is not None and not frames.rejected, frames.rejected
    detections = detect(frames, TimeRange(span[0], span[1] + 1), config or load_rules())
    alerts = []
    for record in detections.records():
        kind, version = record.pop("kind"), record.pop("version")
        del record["t_ms"]
        record["detector"] = {"id": record["detector"].removeprefix("rule:"), "kind": kind, "version": version}
        alerts.append(record)
    return alerts


IN_PROCESS: dict[str, Scoring] = {"stream": stream_alerts, "batch": batch_alerts}


def worker_alerts(settings: Settings, worker: Any, *, timeout_s: float = 60.0) -> Alerts:
    """Every alert the worker wrote for what its input topics hold now: once the worker group has
    committed their end offsets (it commits only after the alerts are acknowledged), the alert
    topic up to its end offsets."""
    wait_committed(settings, scenario_ends(settings), timeout_s=timeout_s, check=worker.assert_alive)
    return [orjson.loads(r.value) for r in read_topic(settings, Topics(settings.topics.prefix).alerts)]


def worker_cases(settings: Settings) -> dict[str, dict]:
    """The latest version of every case on the cases topic (what compaction keeps), read after
    :func:`worker_alerts` (the worker sends a batch's cases before it commits the batch); each
    record's key and headers checked against its content."""
    latest = {}
    for record in read_topic(settings, Topics(settings.topics.prefix).cases):
        case = orjson.loads(record.value)
        assert record.key == case["case_id"].encode() and record.headers == case_headers(case)
        latest[case["case_id"]] = case
    return latest


def expected_cases(alerts: Alerts, config: RulesConfig | None = None) -> dict[str, dict]:
    """The cases of these alerts, each alert once (a redelivered alert is the same alert)."""
    unique = {alert["alert_id"]: alert for alert in alerts}
    return {case["case_id"]: case for case in cases_of(unique.values(), (config or load_rules()).cases)}


def summary(alerts: Alerts) -> set[tuple[str, str, str]]:
    return {(a["entity_id"], a["detector"]["id"], a["severity"]) for a in alerts}
