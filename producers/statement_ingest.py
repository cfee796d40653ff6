"""Publish a bank-statement CSV as ``aml_kyc`` events, one per good row.

Event ids are derived from the account and ``txId``, so ingesting the same file twice
yields the same ids and downstream deduplication holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import KafkaError, Message, Producer

from bankguard.errors import BankguardError
from bankguard.kafka import produce, producer_config
from bankguard.settings import Settings
from bankguard.statements import (
    EVENT_COLUMNS,
    STATEMENT_SCENARIO,
    RejectedRow,
    read_statement,
    statement_frame,
)
from bankguard.topics import Topics


@dataclass(frozen=True)
class IngestReport:
    published: int
    rejected: list[RejectedRow]
    failed: int
    topic: str


def ingest_statement(
    settings: Settings,
    path: Path,
    *,
    account: str | None = None,
    currency: str = "CNY",
    country: str = "CN",
    timezone: str = "Asia/Shanghai",
    encoding: str = "auto",
) -> IngestReport:
    statement = read_statement(path, account=account, timezone=timezone, encoding=encoding)
    frame = statement_frame(statement, currency=currency, country=country)
    topic = Topics(settings.topics.prefix).scenario(STATEMENT_SCENARIO)
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err.str())

    producer = Producer(producer_config(settings) | {"on_delivery": on_delivery})
    events = frame[list(EVENT_COLUMNS)].astype(object).where(frame[list(EVENT_COLUMNS)].notna(), None)
    for timestamp_ms, event in zip(frame["t_ms"].tolist(), events.to_dict("records"), strict=True):
        produce(producer, topic, orjson.dumps(event), event["entity_id"].encode(), timestamp_ms)
    producer.poll(0)
    if producer.flush(30):
        raise BankguardError(f"broker at {settings.kafka.bootstrap_servers} did not acknowledge the statement")
    return IngestReport(len(frame) - len(failures), statement.rejected, len(failures), topic)
