"""Publish a validated, signed rules configuration to the compacted control topic."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer

from bankguard.errors import BankguardError
from bankguard.kafka import bankguard_topics, ensure_topics, producer_config
from bankguard.rules.config import RulesConfig, load_rules
from bankguard.rules.coverage import require_coverage
from bankguard.rules.signing import key_id, sign, signing_key
from bankguard.settings import Settings
from bankguard.topics import Topics

CONTROL_KEY = b"active"  # one key: compaction keeps the latest configuration


def check_rules(path: Path) -> RulesConfig:
    """Everything a worker checks of the content: valid, and no scenario silenced by accident."""
    config = load_rules(path)
    require_coverage(config, source=str(path))
    return config


def publish_rules(settings: Settings, path: Path) -> tuple[str, str]:
    """Check and sign ``path`` (a bad file never reaches the workers), publish it; return its
    version and the signing key's id."""
    config = check_rules(path)
    key = signing_key(settings)
    value = path.read_bytes()
    topic = Topics(settings.topics.prefix).rules_control
    ensure_topics(settings, bankguard_topics(settings))
    producer = Producer(producer_config(settings))
    failures: list[str] = []
    headers: dict[str, str | bytes | None] = dict(sign(key, topic, value))  # the type the client declares
    producer.produce(topic, value, CONTROL_KEY, headers=headers,
                     on_delivery=lambda err, msg: failures.append(str(err)) if err else None)
    if producer.flush(15) or failures:
        detail = f": {failures[0]}" if failures else ""
        raise BankguardError(f"broker at {settings.kafka.bootstrap_servers} did not acknowledge the rules{detail}")
    return config.version, key_id(key.public_key())
