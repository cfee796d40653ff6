"""Publish a bank-statement CSV as ``aml_kyc`` events, one per good row.

Event ids are derived from the account and ``txId``, so ingesting the same file twice
yields the same ids and downstream deduplication holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
from confluent_kafka import Producer

from bankguard.errors import BankguardError
from bankguard.kafka import produce, producer_config
from bankguard.settings import Settings
from bankguard.statements import RejectedRow, Statement, read_statement
from bankguard.topics import Topics

SCENARIO = "aml_kyc"


@dataclass(frozen=True)
class IngestReport:
    published: int
    rejected: list[RejectedRow]
    failed: int
    topic: str


def statement_event_id(account: str, tx_id: str, line: int) -> str:
    """Stable id for a statement row; long ids are hashed to fit the schema's 64 chars."""
    event_id = f"stmt-{account}-{tx_id or f'line{line}'}"
    if len(event_id) <= 64:
        return event_id
    return "stmt-" + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def statement_events(statement: Statement, *, currency: str, country: str) -> list[tuple[int, dict]]:
    """``(timestamp ms, aml_kyc event)`` of every good row, in account and time order."""
    rows = statement.rows
    times = rows["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
    epoch_ms = (rows["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return [
        (ts, {
            "schema_version": 1,
            "event_id": statement_event_id(account, tx_id, line),
            "scenario": SCENARIO,
            "entity_id": account,
            "event_time": when,
            "amount": amount,
            "currency": currency,
            "direction": direction,
            "channel": "statement",
            "source_country": country,
            "destination_country": country,
            "pep": False,
            "memo": memo or None,
            "counterparty": counterparty or None,
        })
        for ts, line, tx_id, account, when, amount, direction, memo, counterparty in zip(
            epoch_ms.tolist(), rows["line"].tolist(), rows["tx_id"].tolist(), rows["account"].tolist(),
            times.tolist(), rows["amount"].tolist(), rows["direction"].tolist(),
            rows["memo"].tolist(), rows["counterparty"].tolist(), strict=True,
        )
    ]


def ingest_statement(
    settings: Settings,
    path: Path,
    *,
    account: str | None = None,
    currency: str = "CNY",
    country: str = "CN",
    timezone: str = "Asia/Shanghai",
) -> IngestReport:
    statement = read_statement(path, account=account, timezone=timezone)
    topic = Topics(settings.topics.prefix).scenario(SCENARIO)
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:  # noqa: ANN001 - librdkafka callback
        if err is not None:
            failures.append(err.str())

    producer = Producer(producer_config(settings) | {"on_delivery": on_delivery})
    events = statement_events(statement, currency=currency, country=country)
    for timestamp_ms, event in events:
        produce(producer, topic, orjson.dumps(event), event["entity_id"].encode(), timestamp_ms)
    producer.poll(0)
    if producer.flush(30):
        raise BankguardError(f"broker at {settings.kafka.bootstrap_servers} did not acknowledge the statement")
    return IngestReport(len(events) - len(failures), statement.rejected, len(failures), topic)

