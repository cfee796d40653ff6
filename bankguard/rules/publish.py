"""Publish a validated rules configuration to the compacted control topic."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer

from bankguard.errors import BankguardError
from bankguard.kafka import bankguard_topics, ensure_topics, producer_config
from bankguard.rules.config import load_rules
from bankguard.settings import Settings
from bankguard.topics import Topics

CONTROL_KEY = b"active"  # one key: compaction keeps the latest configuration


def publish_rules(settings: Settings, path: Path) -> str:
    """Validate ``path`` (a bad file never reaches the workers), publish it, return its version."""
    config = load_rules(path)
    ensure_topics(settings, bankguard_topics(settings))
    producer = Producer(producer_config(settings))
    producer.produce(Topics(settings.topics.prefix).rules_control, path.read_bytes(), CONTROL_KEY)
    if producer.flush(15):
        raise BankguardError(f"broker at {settings.kafka.bootstrap_servers} did not acknowledge the rules")
    return config.version
